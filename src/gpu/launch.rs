//! One way to run a kernel: `Batch::dispatch(kernel, &params, &[buffers], workgroups)`.
//!
//! A batch records many dispatches and submits them in one command buffer; their
//! params structs are packed into one uniform buffer (one `write_buffer` per batch),
//! which is how a training step stays cheap on the host. wgpu inserts the barriers
//! between dispatches that touch the same buffer.

use std::sync::Arc;

use bytemuck::Pod;

use super::kernel::{BindingKind, Kernel, Pipeline};
use super::{Buf, Gpu, GpuError};

enum Op {
    Dispatch(Recorded),
    /// Zero a whole buffer, in order with the dispatches around it.
    Clear(wgpu::Buffer),
}

struct Recorded {
    pipeline: Arc<Pipeline>,
    params_at: Option<(u64, u64)>,
    buffers: Vec<wgpu::Buffer>,
    groups: [u32; 3],
    label: &'static str,
}

/// Dispatches waiting to be submitted together.
pub struct Batch<'g> {
    gpu: &'g Gpu,
    params: Vec<u8>,
    ops: Vec<Op>,
}

/// Time of one dispatch, from GPU timestamps.
#[derive(Clone, Debug)]
pub struct KernelTime {
    pub label: &'static str,
    pub ns: f64,
}

impl Gpu {
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            gpu: self,
            params: Vec::new(),
            ops: Vec::new(),
        }
    }

    /// One dispatch, submitted at once.
    pub fn launch<P: Pod>(
        &self,
        kernel: Kernel,
        params: &P,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Result<(), GpuError> {
        let mut b = self.batch();
        b.dispatch(kernel, params, buffers, groups)?;
        b.submit()
    }

    /// Workgroup size of an entry point, as the shader declares it.
    pub fn workgroup_size(&self, kernel: Kernel) -> Result<[u32; 3], GpuError> {
        Ok(self.pipelines.get(&self.device, kernel)?.workgroup_size)
    }
}

/// Split `n` workgroups into an (x, y) grid within the 65535-per-dimension limit;
/// kernels recover the linear index as `wid.x + wid.y * nwg.x`.
pub fn grid(n: u32) -> [u32; 3] {
    const MAX: u32 = 65535;
    if n <= MAX {
        [n.max(1), 1, 1]
    } else {
        let y = n.div_ceil(MAX);
        [n.div_ceil(y), y, 1]
    }
}

impl<'g> Batch<'g> {
    /// The device this batch records for.
    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    /// Record a dispatch. `buffers` are the shader's storage bindings in binding order;
    /// `params` must have exactly the size of the shader's uniform struct (checked).
    pub fn dispatch<P: Pod>(
        &mut self,
        kernel: Kernel,
        params: &P,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Result<(), GpuError> {
        let pipeline = self.gpu.pipelines.get(&self.gpu.device, kernel)?;
        let iface = &pipeline.shader.interface;
        let bytes = bytemuck::bytes_of(params);
        let params_at = match iface.uniform_size() {
            Some(size) => {
                if size != bytes.len() as u64 {
                    return Err(GpuError::Launch(format!(
                        "{}::{}: params struct is {} bytes on the host but {} in the shader",
                        kernel.shader,
                        kernel.entry,
                        bytes.len(),
                        size
                    )));
                }
                let align = self.gpu.limits.min_uniform_buffer_offset_alignment.max(16) as usize;
                let at = self.params.len().div_ceil(align) * align;
                self.params.resize(at, 0);
                self.params.extend_from_slice(bytes);
                Some((at as u64, size))
            }
            None => None,
        };
        if buffers.len() != iface.storage_count() {
            return Err(GpuError::Launch(format!(
                "{}::{}: {} storage buffers given, the shader declares {}",
                kernel.shader,
                kernel.entry,
                buffers.len(),
                iface.storage_count()
            )));
        }
        let max = self.gpu.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(GpuError::Launch(format!(
                "{}::{}: {groups:?} workgroups exceed the per-dimension limit {max}",
                kernel.shader, kernel.entry
            )));
        }
        self.ops.push(Op::Dispatch(Recorded {
            pipeline,
            params_at,
            buffers: buffers.iter().map(|b| (*b).clone()).collect(),
            groups,
            label: kernel.entry,
        }));
        Ok(())
    }

    /// Record zeroing of a whole buffer, ordered after the dispatches recorded before it.
    pub fn clear(&mut self, buffer: &wgpu::Buffer) {
        self.ops.push(Op::Clear(buffer.clone()));
    }

    fn dispatches(&self) -> impl Iterator<Item = &Recorded> {
        self.ops.iter().filter_map(|o| match o {
            Op::Dispatch(r) => Some(r),
            Op::Clear(_) => None,
        })
    }

    /// Convenience for typed buffers.
    pub fn run<P: Pod, T>(
        &mut self,
        kernel: Kernel,
        params: &P,
        buffers: &[&Buf<T>],
        groups: [u32; 3],
    ) -> Result<(), GpuError> {
        let raw: Vec<&wgpu::Buffer> = buffers.iter().map(|b| b.raw()).collect();
        self.dispatch(kernel, params, &raw, groups)
    }

    /// Recorded operations (dispatches and clears).
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn bind_groups(&self) -> Vec<wgpu::BindGroup> {
        let gpu = self.gpu;
        // Each batch owns its params buffer, filled at creation: a shared buffer updated
        // with write_buffer would race when two threads build batches at once.
        let uniform = (!self.params.is_empty()).then(|| {
            let mut bytes = self.params.clone();
            bytes.resize(bytes.len().div_ceil(4) * 4, 0);
            let buf = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("params"),
                size: bytes.len() as u64,
                usage: wgpu::BufferUsages::UNIFORM,
                mapped_at_creation: true,
            });
            buf.get_mapped_range_mut(..)
                .expect("freshly created mapped buffer")
                .copy_from_slice(&bytes);
            buf.unmap();
            buf
        });
        self.dispatches()
            .map(|r| {
                let mut storage = r.buffers.iter();
                let entries: Vec<_> = r
                    .pipeline
                    .shader
                    .interface
                    .bindings
                    .iter()
                    .map(|b| wgpu::BindGroupEntry {
                        binding: b.binding,
                        resource: match b.kind {
                            BindingKind::Uniform { .. } => {
                                let (at, size) = r.params_at.unwrap();
                                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                    buffer: uniform.as_ref().unwrap(),
                                    offset: at,
                                    size: std::num::NonZeroU64::new(size),
                                })
                            }
                            BindingKind::Storage { .. } => {
                                storage.next().unwrap().as_entire_binding()
                            }
                        },
                    })
                    .collect();
                gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(r.label),
                    layout: &r.pipeline.shader.bind_layout,
                    entries: &entries,
                })
            })
            .collect()
    }

    /// Submit every recorded dispatch in one compute pass (does not wait).
    pub fn submit(self) -> Result<(), GpuError> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let groups = self.bind_groups();
        let mut groups = groups.iter();
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        // Runs of dispatches share one compute pass; a clear ends the pass.
        let mut ops = self.ops.iter().peekable();
        while let Some(op) = ops.next() {
            match op {
                Op::Clear(buf) => enc.clear_buffer(buf, 0, None),
                Op::Dispatch(first) => {
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    let mut r = first;
                    loop {
                        let bg = groups.next().expect("one bind group per dispatch");
                        pass.set_pipeline(&r.pipeline.pipeline);
                        pass.set_bind_group(0, bg, &[]);
                        pass.dispatch_workgroups(r.groups[0], r.groups[1], r.groups[2]);
                        match ops.peek() {
                            Some(Op::Dispatch(next)) => {
                                r = next;
                                ops.next();
                            }
                            _ => break,
                        }
                    }
                }
            }
        }
        self.gpu.queue.submit([enc.finish()]);
        self.gpu.check()
    }

    /// Submit with one pass per dispatch and GPU timestamps around each; waits and
    /// returns per-dispatch times. None when the adapter has no timestamp queries.
    pub fn submit_timed(self) -> Result<Option<Vec<KernelTime>>, GpuError> {
        let gpu = self.gpu;
        if !gpu.has_timestamps {
            self.submit()?;
            gpu.sync()?;
            return Ok(None);
        }
        let n = self.dispatches().count() as u32;
        if n == 0 {
            self.submit()?;
            return Ok(Some(vec![]));
        }
        let groups = self.bind_groups();
        let qs = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * n,
        });
        let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: 16 * n as u64,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let mut i = 0usize;
        let mut groups = groups.iter();
        for op in &self.ops {
            let r = match op {
                Op::Clear(buf) => {
                    enc.clear_buffer(buf, 0, None);
                    continue;
                }
                Op::Dispatch(r) => r,
            };
            let bg = groups.next().expect("one bind group per dispatch");
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(r.label),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &qs,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                }),
            });
            pass.set_pipeline(&r.pipeline.pipeline);
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(r.groups[0], r.groups[1], r.groups[2]);
            drop(pass);
            i += 1;
        }
        enc.resolve_query_set(&qs, 0..2 * n, &resolve, 0);
        gpu.queue.submit([enc.finish()]);
        let ticks: Vec<u64> =
            bytemuck::pod_collect_to_vec(&gpu.read_bytes(&resolve, 16 * n as u64)?);
        let period = gpu.queue.get_timestamp_period() as f64;
        Ok(Some(
            self.dispatches()
                .enumerate()
                .map(|(i, r)| KernelTime {
                    label: r.label,
                    ns: ticks[2 * i + 1].wrapping_sub(ticks[2 * i]) as f64 * period,
                })
                .collect(),
        ))
    }
}
