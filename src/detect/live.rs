//! Live capture through libpcap (the `pcap` crate; building needs the
//! libpcap headers, Debian's `libpcap-dev`). Promiscuous, BPF filter in the
//! kernel, non-blocking reads with poll(2) in between, so the capture
//! thread notices a stop request within one poll interval and passes each
//! packet on as soon as the wire goes quiet.

use std::os::unix::io::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{Context, Result};

use super::counters::Counters;
use crate::ingest::{Frame, LinkType};

pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    count: u64,
    pub iface: String,
}

impl LiveCapture {
    pub fn open(iface: &str, filter: Option<&str>, snaplen: i32) -> Result<Self> {
        let mut cap = pcap::Capture::from_device(iface)
            .with_context(|| format!("capture device {iface}"))?
            .promisc(true)
            .snaplen(snaplen)
            .immediate_mode(true)
            .buffer_size(32 << 20)
            .timeout(100)
            .open()
            .with_context(|| {
                format!("opening {iface} for live capture (needs root or CAP_NET_RAW)")
            })?;
        if let Some(f) = filter {
            cap.filter(f, true)
                .with_context(|| format!("invalid BPF filter expression '{f}'"))?;
        }
        let lt = cap.get_datalink();
        let link = LinkType::from_linktype(lt.0 as u32).with_context(|| {
            format!(
                "{iface}: unsupported link type {} ({})",
                lt.0,
                lt.get_name().unwrap_or_default()
            )
        })?;
        let cap = cap
            .setnonblock()
            .with_context(|| format!("{iface}: non-blocking mode"))?;
        Ok(LiveCapture {
            cap,
            link,
            count: 0,
            iface: iface.to_string(),
        })
    }

    /// The next waiting packet; `None` when none is waiting.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>> {
        match self.cap.next_packet() {
            Ok(p) => {
                self.count += 1;
                let ts = p.header.ts;
                let ts_ns =
                    (ts.tv_sec.max(0) as u64) * 1_000_000_000 + (ts.tv_usec.max(0) as u64) * 1000;
                Ok(Some(Frame {
                    ts_ns,
                    link: self.link,
                    data: p.data,
                    number: self.count,
                    orig_len: p.header.len,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("reading from {}", self.iface))),
        }
    }

    /// Sleeps until a packet is waiting or `d` has passed.
    pub fn wait(&self, d: Duration) -> Result<()> {
        let mut p = libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, the capture's descriptor, alive for the call.
        let r = unsafe { libc::poll(&mut p, 1, d.as_millis() as libc::c_int) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(anyhow::Error::new(e).context(format!("poll on {}", self.iface)));
            }
        }
        Ok(())
    }

    /// Kernel counters: packets seen, dropped for lack of buffer space, and
    /// dropped by the interface.
    pub fn update_stats(&mut self, c: &Counters) {
        if let Ok(s) = self.cap.stats() {
            c.kernel_packets.store(s.received as u64, Relaxed);
            c.kernel_drops.store(s.dropped as u64, Relaxed);
            c.kernel_ifdrops.store(s.if_dropped as u64, Relaxed);
        }
    }
}
