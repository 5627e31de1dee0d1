//! Typed storage buffers: upload, zero, write, read back.

use std::marker::PhantomData;

use bytemuck::Pod;

use super::{Gpu, GpuError};

/// A storage buffer of `len` elements of `T`. Sizes are padded to 4 bytes (WGSL's
/// smallest storage element) and to at least 4 bytes (wgpu rejects empty bindings).
pub struct Buf<T> {
    raw: wgpu::Buffer,
    len: usize,
    _t: PhantomData<T>,
}

impl<T> Buf<T> {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn raw(&self) -> &wgpu::Buffer {
        &self.raw
    }
    pub fn byte_len(&self) -> u64 {
        (self.len * std::mem::size_of::<T>()) as u64
    }
    /// An op's check of a buffer it was handed: at least `want` elements;
    /// `what` names the buffer in the error.
    pub fn check_len(&self, what: &str, want: usize) -> Result<(), GpuError> {
        if self.len < want {
            return Err(GpuError::Launch(format!(
                "{what} has {} elements, needs {want}",
                self.len
            )));
        }
        Ok(())
    }
}

fn padded(bytes: u64) -> u64 {
    bytes.max(4).div_ceil(4) * 4
}

impl Gpu {
    fn alloc_raw(&self, bytes: u64, label: &str) -> Result<wgpu::Buffer, GpuError> {
        let size = padded(bytes);
        if size > self.limits.max_storage_buffer_binding_size {
            return Err(GpuError::TooLarge {
                what: label.to_string(),
                bytes: size,
                limit: self.limits.max_storage_buffer_binding_size,
            });
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let raw = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::OutOfMemory(format!(
                "{label} ({size} bytes): {e}"
            )));
        }
        Ok(raw)
    }

    /// A zero-filled buffer (wgpu zero-initialises new buffers).
    pub fn zeros<T: Pod>(&self, len: usize) -> Result<Buf<T>, GpuError> {
        let raw = self.alloc_raw((len * std::mem::size_of::<T>()) as u64, "zeros")?;
        Ok(Buf {
            raw,
            len,
            _t: PhantomData,
        })
    }

    pub fn upload<T: Pod>(&self, data: &[T]) -> Result<Buf<T>, GpuError> {
        let b = self.zeros::<T>(data.len())?;
        self.write(&b, 0, data);
        Ok(b)
    }

    /// Queue a write of `data` at element `offset`; ordered before the next submit.
    /// Byte lengths not a multiple of 4 are padded with zeros, as wgpu requires.
    pub fn write<T: Pod>(&self, buf: &Buf<T>, offset: usize, data: &[T]) {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let at = (offset * std::mem::size_of::<T>()) as u64;
        if bytes.is_empty() {
            return;
        }
        if bytes.len().is_multiple_of(4) {
            self.queue.write_buffer(&buf.raw, at, bytes);
        } else {
            let mut v = bytes.to_vec();
            v.resize(padded(v.len() as u64) as usize, 0);
            self.queue.write_buffer(&buf.raw, at, &v);
        }
    }

    /// Zero a whole buffer on the GPU timeline.
    pub fn clear<T>(&self, buf: &Buf<T>) {
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&buf.raw, 0, None);
        self.queue.submit([enc.finish()]);
    }

    /// Copy the buffer back to the host (waits for all queued work).
    pub fn read<T: Pod>(&self, buf: &Buf<T>) -> Result<Vec<T>, GpuError> {
        let bytes = self.read_bytes(&buf.raw, buf.byte_len())?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    pub(crate) fn read_bytes(&self, raw: &wgpu::Buffer, len: u64) -> Result<Vec<u8>, GpuError> {
        let size = padded(len);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(raw, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.sync()?;
        rx.recv()
            .map_err(|_| GpuError::Map("map callback never ran".into()))?
            .map_err(|e| GpuError::Map(e.to_string()))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| GpuError::Map(e.to_string()))?;
        let out = view[..len as usize].to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }
}
