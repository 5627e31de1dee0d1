//! Capture reading: classic pcap (both byte orders, µs/ns) and pcapng (many
//! interfaces, EPB/SPB/PB) through pcap-file's slice parsers, fed from a
//! rolling buffer so that files and stdin stream in bounded memory.
//!
//! Captures are read with `read()` into a buffer rather than memory-mapped:
//! mapped pages count towards the process's resident set, so mapping a 5 GB
//! capture would defeat the memory bound promised in docs/INGEST.md.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use pcap_file::pcap::{PcapHeader, PcapParser};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{Endianness, PcapError, TsResolution};
use sha2::{Digest, Sha256};

/// Records larger than this are treated as corruption rather than waited
/// for: no link layer carries 64 MiB frames, and trusting a garbage length
/// would make the rolling buffer grow to the size of the file.
const MAX_RECORD: usize = 64 << 20;
const CHUNK: usize = 1 << 20;
/// The largest frame any link type captures (libpcap's maximum snapshot
/// length). It bounds a record when the file header gives no snap length,
/// and tells a block cut short by the end of the file (at most this long)
/// from a corrupt length (longer, so no writer could have produced it).
const MAX_SNAPLEN: usize = 262_144;
/// Room for a packet block's fixed fields and options beside the frame.
const MAX_BLOCK_OVERHEAD: usize = 64 << 10;

/// Link-layer header types we can strip down to an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LinkType {
    Ethernet,
    /// Linux cooked capture v1 (SLL), 16-byte header.
    LinuxSll,
    /// Linux cooked capture v2 (SLL2), 20-byte header.
    LinuxSll2,
    /// Raw IP, version from the first nibble.
    Raw,
    Ipv4,
    Ipv6,
    /// BSD loopback: 4-byte address family in the capturing host's byte order.
    Null,
    /// OpenBSD loopback: address family in network byte order.
    Loop,
}

impl LinkType {
    /// Maps a LINKTYPE_ value; `None` for link types we cannot decode.
    pub fn from_linktype(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Ethernet,
            113 => Self::LinuxSll,
            276 => Self::LinuxSll2,
            // 12 and 14 are DLT_RAW values some systems write unmapped.
            101 | 12 | 14 => Self::Raw,
            228 => Self::Ipv4,
            229 => Self::Ipv6,
            0 => Self::Null,
            108 => Self::Loop,
            _ => return None,
        })
    }

    pub fn linktype(self) -> u32 {
        match self {
            Self::Ethernet => 1,
            Self::LinuxSll => 113,
            Self::LinuxSll2 => 276,
            Self::Raw => 101,
            Self::Ipv4 => 228,
            Self::Ipv6 => 229,
            Self::Null => 0,
            Self::Loop => 108,
        }
    }
}

/// A capture problem that stops reading. Every variant names the input.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("{file}: empty file (0 bytes), not a capture")]
    Empty { file: String },
    #[error("{file}: not a pcap or pcapng capture (first bytes {magic:02x?})")]
    NotACapture { file: String, magic: Vec<u8> },
    #[error("{file}: corrupt {what} at byte offset {offset}: {reason}")]
    Corrupt {
        file: String,
        what: &'static str,
        offset: u64,
        reason: String,
    },
    #[error("{file}: unsupported link type {linktype} ({name}) at byte offset {offset}; supported: Ethernet (1), Linux SLL (113), SLL2 (276), raw IP (101, 12, 14, 228, 229), BSD null (0), loop (108)")]
    UnknownLinkType {
        file: String,
        linktype: u32,
        name: String,
        offset: u64,
    },
}

/// One captured frame, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Nanoseconds since the Unix epoch (or since whatever the capture's
    /// clock started at).
    pub ts_ns: u64,
    pub link: LinkType,
    pub data: &'a [u8],
    /// 1-based position in the capture, as tshark's frame.number.
    pub number: u64,
    /// Original length on the wire (≥ data.len() when snapped).
    pub orig_len: u32,
}

/// Where capture bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSource {
    File(PathBuf),
    Stdin,
}

impl InputSource {
    pub fn display(&self) -> String {
        match self {
            Self::File(p) => p.display().to_string(),
            Self::Stdin => "<stdin>".to_string(),
        }
    }
}

enum Format {
    Pcap {
        parser: PcapParser,
        link: LinkType,
        nanos: bool,
    },
    PcapNg {
        parser: Box<PcapNgParser>,
        /// Per interface of the current section: link type and the factor
        /// turning raw timestamp units into ns (negative: divide).
        ifaces: Vec<(LinkType, TsScale, u64)>,
    },
}

#[derive(Clone, Copy, Debug)]
enum TsScale {
    Mul(u64),
    Div(u64),
}

impl TsScale {
    fn from_tsresol(r: u8) -> Self {
        if r & 0x80 == 0 {
            let e = (r & 0x7f) as u32;
            if e <= 9 {
                TsScale::Mul(10u64.pow(9 - e))
            } else {
                TsScale::Div(10u64.saturating_pow(e - 9))
            }
        } else {
            // Binary fraction: units of 2^-e s.
            let e = (r & 0x7f) as u32;
            if e >= 30 {
                TsScale::Div(1u64 << (e - 30).min(63))
            } else {
                TsScale::Mul(1_000_000_000 >> e)
            }
        }
    }
    fn apply(self, raw: u64) -> u64 {
        match self {
            TsScale::Mul(m) => raw.saturating_mul(m),
            TsScale::Div(d) => raw / d.max(1),
        }
    }
}

/// Streaming reader over one capture. Not an `Iterator` because frames
/// borrow the internal buffer (no copy per packet).
pub struct CaptureReader {
    name: String,
    src: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Absolute file offset of `buf[start]`.
    offset: u64,
    eof: bool,
    format: Option<Format>,
    packets: u64,
    last_ts: u64,
    hasher: Option<Sha256>,
    bytes_read: u64,
    warnings: Vec<String>,
    total_size: Option<u64>,
}

impl CaptureReader {
    /// Opens a file or stdin and parses the file header.
    pub fn open(input: &InputSource) -> Result<Self, ReadError> {
        let name = input.display();
        let (src, size): (Box<dyn Read + Send>, Option<u64>) = match input {
            InputSource::File(p) => {
                let f = File::open(p).map_err(|e| ReadError::Io {
                    file: name.clone(),
                    source: e,
                })?;
                let size = f.metadata().ok().map(|m| m.len());
                (Box::new(f), size)
            }
            InputSource::Stdin => (Box::new(io::stdin()), None),
        };
        Self::from_reader(name, src, size)
    }

    /// Reads a capture held in memory (tests, fuzzing).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, ReadError> {
        let n = bytes.len() as u64;
        Self::from_reader(name.to_string(), Box::new(io::Cursor::new(bytes)), Some(n))
    }

    pub fn from_reader(
        name: String,
        src: Box<dyn Read + Send>,
        total_size: Option<u64>,
    ) -> Result<Self, ReadError> {
        let mut r = CaptureReader {
            name,
            src,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            format: None,
            packets: 0,
            last_ts: 0,
            hasher: None,
            bytes_read: 0,
            warnings: Vec::new(),
            total_size,
        };
        r.read_header()?;
        Ok(r)
    }

    /// Hashes every byte read from now on (call before the first frame;
    /// the header bytes already read are included).
    pub fn enable_sha256(&mut self) {
        let mut h = Sha256::new();
        h.update(&self.buf[..self.end]);
        self.hasher = Some(h);
    }

    /// Hex sha256 of the whole input; only valid after the last frame.
    pub fn sha256_hex(&mut self) -> Option<String> {
        self.hasher.take().map(|h| {
            h.finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn packets_read(&self) -> u64 {
        self.packets
    }
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }
    /// Byte offset of the next record.
    pub fn position(&self) -> u64 {
        self.offset
    }
    pub fn total_size(&self) -> Option<u64> {
        self.total_size
    }
    /// Bytes read from the source but not yet returned as frames: when
    /// few remain, the next frame may wait on the source (streaming users
    /// pass on what they hold first).
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }
    /// Non-fatal problems (truncated last record, empty capture).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn io_err(&self, e: io::Error) -> ReadError {
        ReadError::Io {
            file: self.name.clone(),
            source: e,
        }
    }

    fn corrupt(&self, what: &'static str, offset: u64, reason: impl Into<String>) -> ReadError {
        ReadError::Corrupt {
            file: self.name.clone(),
            what,
            offset,
            reason: reason.into(),
        }
    }

    /// Reads more bytes; returns false at end of input. Grows the buffer
    /// only when a single record does not fit.
    fn fill(&mut self) -> Result<bool, ReadError> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let n = (self.buf.len() * 2).min(MAX_RECORD + CHUNK);
            if n == self.buf.len() {
                return Err(self.corrupt("record", self.offset, "record larger than 64 MiB"));
            }
            self.buf.resize(n, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    if let Some(h) = self.hasher.as_mut() {
                        h.update(&self.buf[self.end..self.end + n]);
                    }
                    self.end += n;
                    self.bytes_read += n as u64;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_err(e)),
            }
        }
    }

    /// Ensures at least `n` unread bytes are buffered, unless input ends.
    fn want(&mut self, n: usize) -> Result<bool, ReadError> {
        while self.end - self.start < n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn read_header(&mut self) -> Result<(), ReadError> {
        self.want(24)?;
        let avail = self.end - self.start;
        if avail == 0 {
            return Err(ReadError::Empty {
                file: self.name.clone(),
            });
        }
        let magic = &self.buf[..avail.min(4)];
        let is_pcap = matches!(
            magic,
            [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xc3, 0xd4]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
        );
        let is_ng = magic == [0x0a, 0x0d, 0x0d, 0x0a];
        if !is_pcap && !is_ng {
            return Err(ReadError::NotACapture {
                file: self.name.clone(),
                magic: magic.to_vec(),
            });
        }
        if is_pcap {
            if avail < 24 {
                return Err(self.corrupt(
                    "pcap file header",
                    0,
                    format!("only {avail} of 24 bytes"),
                ));
            }
            let (_, header): (_, PcapHeader) = PcapHeader::from_slice(&self.buf[..24])
                .map_err(|e| self.corrupt("pcap file header", 0, e.to_string()))?;
            let (_, parser) = PcapParser::new(&self.buf[..24])
                .map_err(|e| self.corrupt("pcap file header", 0, e.to_string()))?;
            let lt: u32 = header.datalink.into();
            let link = LinkType::from_linktype(lt).ok_or_else(|| ReadError::UnknownLinkType {
                file: self.name.clone(),
                linktype: lt,
                name: format!("{:?}", header.datalink),
                offset: 20,
            })?;
            self.start = 24;
            self.offset = 24;
            self.format = Some(Format::Pcap {
                parser,
                link,
                nanos: header.ts_resolution == TsResolution::NanoSecond,
            });
        } else {
            // Section header block: total length at bytes 4..8 in the
            // section's byte order, given by the magic at 8..12.
            self.want(12)?;
            if self.end - self.start < 12 {
                return Err(self.corrupt("pcapng section header", 0, "file shorter than 12 bytes"));
            }
            let len = self.block_len(0)?;
            if !self.want(len)? {
                return Err(self.corrupt("pcapng section header", 0, "truncated"));
            }
            let (rem, parser) = PcapNgParser::new(&self.buf[..len])
                .map_err(|e| self.corrupt("pcapng section header", 0, e.to_string()))?;
            debug_assert!(rem.is_empty());
            self.start = len;
            self.offset = len as u64;
            self.format = Some(Format::PcapNg {
                parser: Box::new(parser),
                ifaces: Vec::new(),
            });
        }
        Ok(())
    }

    /// Total length of the pcapng block starting at `buf[start + rel]`.
    fn block_len(&self, rel: usize) -> Result<usize, ReadError> {
        let b = &self.buf[self.start + rel..];
        let little = match &self.format {
            Some(Format::PcapNg { parser, .. }) if b[0..4] != [0x0a, 0x0d, 0x0d, 0x0a] => {
                parser.section().endianness == Endianness::Little
            }
            _ => {
                // Section header: byte-order magic decides.
                if b.len() < 12 {
                    return Err(self.corrupt(
                        "pcapng block",
                        self.offset,
                        "truncated block header",
                    ));
                }
                match &b[8..12] {
                    [0x4d, 0x3c, 0x2b, 0x1a] => true,
                    [0x1a, 0x2b, 0x3c, 0x4d] => false,
                    m => {
                        return Err(self.corrupt(
                            "pcapng section header",
                            self.offset,
                            format!("bad byte-order magic {m:02x?}"),
                        ))
                    }
                }
            }
        };
        let raw = [b[4], b[5], b[6], b[7]];
        let len = if little {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        } as usize;
        if len < 12 || !len.is_multiple_of(4) || len > MAX_RECORD {
            return Err(self.corrupt("pcapng block", self.offset, format!("block length {len}")));
        }
        Ok(len)
    }

    fn truncated_tail(&mut self, what: &str) {
        let left = self.end - self.start;
        if left > 0 {
            self.warnings.push(format!(
                "{}: truncated last {what} at byte offset {} ({left} bytes); read {} packets before it",
                self.name, self.offset, self.packets
            ));
        }
        self.start = self.end;
    }

    /// The next frame, or `None` at the end of the capture.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, ReadError> {
        let r = match self.format {
            Some(Format::Pcap { .. }) => self.next_pcap()?,
            Some(Format::PcapNg { .. }) => self.next_pcapng()?,
            None => None,
        };
        if r.is_none() && self.packets == 0 && self.warnings.is_empty() {
            self.warnings
                .push(format!("{}: capture holds no packets", self.name));
        }
        Ok(r.map(move |(ts_ns, link, a, b, orig_len)| Frame {
            ts_ns,
            link,
            data: &self.buf[a..b],
            number: self.packets,
            orig_len,
        }))
    }

    #[allow(clippy::type_complexity)]
    fn next_pcap(&mut self) -> Result<Option<(u64, LinkType, usize, usize, u32)>, ReadError> {
        if !self.want(16)? {
            self.truncated_tail("record header");
            return Ok(None);
        }
        let Some(Format::Pcap {
            parser,
            link,
            nanos,
        }) = &self.format
        else {
            return Ok(None);
        };
        let (link, nanos) = (*link, *nanos);
        let hdr = &self.buf[self.start..self.start + 16];
        let big = parser.header().endianness == Endianness::Big;
        let rd = |i: usize| {
            let b = [hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]];
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let incl = rd(8) as usize;
        // A length beyond the snap length cannot come from the writer: it is
        // corruption, not a record cut short, wherever the file ends.
        // A zero or oversized header snap length (some writers put 2^31-1)
        // falls back to the largest frame libpcap captures, as Wireshark does.
        let snap = match parser.header().snaplen as usize {
            0 => MAX_SNAPLEN,
            s => s.min(MAX_SNAPLEN),
        };
        if incl > snap || incl > MAX_RECORD {
            return Err(self.corrupt(
                "record header",
                self.offset,
                format!("captured length {incl} bytes exceeds the capture's snap length {snap}"),
            ));
        }
        if !self.want(16 + incl)? {
            self.truncated_tail("record");
            return Ok(None);
        }
        let Some(Format::Pcap { parser, .. }) = &self.format else {
            return Ok(None);
        };
        let avail = &self.buf[self.start..self.end];
        let (rem, pkt) = match parser.next_raw_packet(avail) {
            Ok(x) => x,
            Err(e) => return Err(self.corrupt("record", self.offset, e.to_string())),
        };
        let used = avail.len() - rem.len();
        let frac = pkt.ts_frac as u64;
        let ts = (pkt.ts_sec as u64) * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        let orig = pkt.orig_len;
        let a = self.start + 16;
        let b = a + incl;
        self.start += used;
        self.offset += used as u64;
        self.packets += 1;
        self.last_ts = ts;
        Ok(Some((ts, link, a, b, orig)))
    }

    #[allow(clippy::type_complexity)]
    fn next_pcapng(&mut self) -> Result<Option<(u64, LinkType, usize, usize, u32)>, ReadError> {
        loop {
            if !self.want(12)? {
                self.truncated_tail("block");
                return Ok(None);
            }
            let len = self.block_len(0)?;
            if !self.want(len)? {
                // Only a length some writer could have produced is a block
                // cut short; a longer one is a corrupt length field.
                if len > MAX_SNAPLEN + MAX_BLOCK_OVERHEAD {
                    let left = self.end - self.start;
                    return Err(self.corrupt(
                        "pcapng block",
                        self.offset,
                        format!(
                            "block length {len} is implausible (the input ends {left} bytes later)"
                        ),
                    ));
                }
                self.truncated_tail("block");
                return Ok(None);
            }
            let block_off = self.offset;
            let start = self.start;
            let name = self.name.clone();
            let Some(Format::PcapNg { parser, ifaces }) = &mut self.format else {
                return Ok(None);
            };
            let slice = &self.buf[start..start + len];
            let corrupt = |what: &'static str, reason: String| ReadError::Corrupt {
                file: name.clone(),
                what,
                offset: block_off,
                reason,
            };
            let (_, block) = parser.next_block(slice).map_err(|e| match e {
                PcapError::IncompleteBuffer => {
                    corrupt("pcapng block", "block body shorter than its fields".into())
                }
                e => corrupt("pcapng block", e.to_string()),
            })?;
            let base = slice.as_ptr() as usize;
            let mut out = None;
            match block {
                Block::SectionHeader(_) => ifaces.clear(),
                Block::InterfaceDescription(idb) => {
                    let lt: u32 = idb.linktype.into();
                    let link =
                        LinkType::from_linktype(lt).ok_or_else(|| ReadError::UnknownLinkType {
                            file: name.clone(),
                            linktype: lt,
                            name: format!("{:?}", idb.linktype),
                            offset: block_off,
                        })?;
                    let mut scale = TsScale::Mul(1000);
                    let mut toff = 0u64;
                    for o in &idb.options {
                        match o {
                            InterfaceDescriptionOption::IfTsResol(r) => {
                                scale = TsScale::from_tsresol(*r)
                            }
                            InterfaceDescriptionOption::IfTsOffset(s) => {
                                toff = s.saturating_mul(1_000_000_000)
                            }
                            _ => {}
                        }
                    }
                    ifaces.push((link, scale, toff));
                }
                Block::EnhancedPacket(epb) => {
                    let (link, scale, toff) =
                        *ifaces.get(epb.interface_id as usize).ok_or_else(|| {
                            corrupt(
                                "pcapng block",
                                format!(
                                    "packet names interface {} which was not described",
                                    epb.interface_id
                                ),
                            )
                        })?;
                    let ts = scale
                        .apply(epb.timestamp.as_nanos() as u64)
                        .saturating_add(toff);
                    let a = epb.data.as_ptr() as usize - base;
                    out = Some((
                        ts,
                        link,
                        start + a,
                        start + a + epb.data.len(),
                        epb.original_len,
                    ));
                }
                Block::Packet(pb) => {
                    let (link, scale, toff) =
                        *ifaces.get(pb.interface_id as usize).ok_or_else(|| {
                            corrupt(
                                "pcapng block",
                                format!(
                                    "packet names interface {} which was not described",
                                    pb.interface_id
                                ),
                            )
                        })?;
                    let ts = scale.apply(pb.timestamp).saturating_add(toff);
                    let a = pb.data.as_ptr() as usize - base;
                    out = Some((
                        ts,
                        link,
                        start + a,
                        start + a + pb.data.len(),
                        pb.original_len,
                    ));
                }
                Block::SimplePacket(spb) => {
                    let (link, _, _) = *ifaces.first().ok_or_else(|| {
                        corrupt(
                            "pcapng block",
                            "simple packet block before any interface description".into(),
                        )
                    })?;
                    // The block body includes padding; the original length
                    // tells where the frame ends.
                    let n = (spb.original_len as usize).min(spb.data.len());
                    let a = spb.data.as_ptr() as usize - base;
                    // No timestamp in an SPB: keep capture order by reusing
                    // the previous packet's time.
                    out = Some((
                        self.last_ts,
                        link,
                        start + a,
                        start + a + n,
                        spb.original_len,
                    ));
                }
                _ => {}
            }
            self.start += len;
            self.offset += len as u64;
            if let Some(o) = out {
                self.packets += 1;
                self.last_ts = o.0;
                return Ok(Some(o));
            }
        }
    }
}

/// Expands command-line inputs: `-` is stdin, a directory contributes
/// every capture below it (by magic number, in path order), a file itself.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<InputSource>, ReadError> {
    let mut out = Vec::new();
    for p in inputs {
        if p.as_os_str() == "-" {
            out.push(InputSource::Stdin);
        } else if p.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files).map_err(|e| ReadError::Io {
                file: p.display().to_string(),
                source: e,
            })?;
            files.sort();
            out.extend(files.into_iter().map(InputSource::File));
        } else {
            out.push(InputSource::File(p.clone()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if has_capture_magic(&p) {
            out.push(p);
        }
    }
    Ok(())
}

fn has_capture_magic(p: &Path) -> bool {
    let mut m = [0u8; 4];
    File::open(p)
        .and_then(|mut f| f.read_exact(&mut m))
        .map(|_| {
            matches!(
                m,
                [0xd4, 0xc3, 0xb2, 0xa1]
                    | [0xa1, 0xb2, 0xc3, 0xd4]
                    | [0x4d, 0x3c, 0xb2, 0xa1]
                    | [0xa1, 0xb2, 0x3c, 0x4d]
                    | [0x0a, 0x0d, 0x0d, 0x0a]
            )
        })
        .unwrap_or(false)
}
