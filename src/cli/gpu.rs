//! `gpu-nids devices` and `gpu-nids bench matmul`.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use crate::gpu::context::{enumerate, AdapterSummary, Gpu, GpuOptions, LimitsMode};
use crate::nn::matmul::{matmul, MatmulParams, MatmulVariant, Trans};

/// Adapter selection, shared by every subcommand that runs kernels.
#[derive(Args, Clone, Debug, Default)]
pub struct GpuArgs {
    /// Use the adapter whose name contains this (case-insensitive), e.g. "llvmpipe" or "nvidia".
    #[arg(long, env = "GPU_NIDS_ADAPTER", global = true)]
    pub adapter: Option<String>,
    /// Restrict to one backend: vulkan, metal, dx12 or gl.
    #[arg(long, env = "GPU_NIDS_BACKEND", global = true)]
    pub backend: Option<String>,
}

impl GpuArgs {
    pub fn options(&self) -> GpuOptions {
        GpuOptions {
            adapter: self.adapter.clone(),
            backend: self.backend.clone(),
            limits: LimitsMode::Adapter,
            tune: true,
        }
    }
    pub fn open(&self) -> Result<Gpu> {
        let gpu = Gpu::new(&self.options())?;
        eprintln!(
            "adapter: {} ({:?}, {:?})",
            gpu.info.name, gpu.info.backend, gpu.info.device_type
        );
        Ok(gpu)
    }
}

#[derive(Args, Debug)]
pub struct DevicesArgs {
    #[command(flatten)]
    pub gpu: GpuArgs,
}

fn mib(x: u64) -> String {
    format!("{} MiB", x >> 20)
}

fn print_adapter(s: &AdapterSummary, chosen: bool) {
    println!(
        "{} {}\n    backend {:?}, type {:?}, driver {} {}",
        if chosen { "*" } else { " " },
        s.name,
        s.backend,
        s.device_type,
        s.driver,
        s.driver_info
    );
    let l = &s.limits;
    println!(
        "    max storage binding {}, max buffer {}, storage buffers/stage {}",
        mib(l.max_storage_buffer_binding_size),
        mib(l.max_buffer_size),
        l.max_storage_buffers_per_shader_stage
    );
    println!(
        "    workgroup: max invocations {}, size ({}, {}, {}), shared memory {} KiB, groups/dim {}",
        l.max_compute_invocations_per_workgroup,
        l.max_compute_workgroup_size_x,
        l.max_compute_workgroup_size_y,
        l.max_compute_workgroup_size_z,
        l.max_compute_workgroup_storage_size / 1024,
        l.max_compute_workgroups_per_dimension
    );
    let f = s.features;
    let flag = |x: wgpu::Features, n: &str| {
        if f.contains(x) {
            format!("{n} ")
        } else {
            String::new()
        }
    };
    println!(
        "    features: {}{}{}{}",
        flag(wgpu::Features::SHADER_F16, "SHADER_F16"),
        flag(wgpu::Features::TIMESTAMP_QUERY, "TIMESTAMP_QUERY"),
        flag(wgpu::Features::SUBGROUP, "SUBGROUP"),
        flag(
            wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES,
            "TIMESTAMP_QUERY_INSIDE_PASSES"
        ),
    );
}

pub fn devices(a: &DevicesArgs) -> Result<()> {
    let opts = a.gpu.options();
    let (adapters, chosen) = enumerate(&opts)?;
    if adapters.is_empty() {
        return Err(crate::gpu::GpuError::NoAdapter.into());
    }
    println!(
        "{} adapter(s), best first (* = the one gpu-nids uses):",
        adapters.len()
    );
    for (i, ad) in adapters.iter().enumerate() {
        print_adapter(&AdapterSummary::of(ad), Some(i) == chosen);
    }
    match chosen {
        Some(i) => println!("using: {}", adapters[i].get_info().name),
        None => anyhow::bail!(
            "no adapter name contains '{}'",
            opts.adapter.unwrap_or_default()
        ),
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct BenchMatmulArgs {
    /// Square sizes M=N=K to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "256,512,1024")]
    pub sizes: Vec<usize>,
    /// Kernel variant: tiled, reg, or all.
    #[arg(long, default_value = "all")]
    pub variant: String,
    /// Timed repetitions per size (after one warm-up).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

pub fn bench_matmul(a: &BenchMatmulArgs) -> Result<()> {
    let gpu = a.gpu.open()?;
    let variants: Vec<MatmulVariant> = match a.variant.as_str() {
        "all" => MatmulVariant::ALL.to_vec(),
        "tiled" => vec![MatmulVariant::Tiled],
        "reg" => vec![MatmulVariant::Reg],
        v => anyhow::bail!("--variant {v}: expected tiled, reg or all"),
    };
    let timer = if gpu.has_timestamps {
        "GPU timestamps"
    } else {
        "wall clock"
    };
    println!(
        "matmul f32 on {} ({:?}); timed by {timer}; default variant here: {}",
        gpu.info.name,
        gpu.info.device_type,
        MatmulVariant::for_gpu(&gpu).name()
    );
    println!(
        "{:>6} {:>6} {:>7} {:>12} {:>10}",
        "size", "kernel", "op", "ms/call", "GFLOP/s"
    );
    for &n in &a.sizes {
        let data: Vec<f32> = (0..n * n)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        let ga = gpu.upload(&data)?;
        let gb = gpu.upload(&data)?;
        let gc = gpu.zeros::<f32>(n * n)?;
        for &v in &variants {
            for (op, t) in [("A·B", Trans::None), ("A·Bᵀ", Trans::B), ("Aᵀ·B", Trans::A)] {
                let p = MatmulParams::dense(n, n, n, t);
                let run = |timed: bool| -> Result<f64> {
                    let mut b = gpu.batch();
                    matmul(&mut b, v, &p, ga.raw(), gb.raw(), gc.raw())?;
                    if timed && gpu.has_timestamps {
                        let t = b.submit_timed()?.context("timestamps")?;
                        Ok(t[0].ns * 1e-9)
                    } else {
                        let t0 = Instant::now();
                        b.submit()?;
                        gpu.sync()?;
                        Ok(t0.elapsed().as_secs_f64())
                    }
                };
                run(false)?;
                let mut best = f64::INFINITY;
                for _ in 0..a.iters.max(1) {
                    best = best.min(run(true)?);
                }
                println!(
                    "{n:>6} {:>6} {op:>7} {:>12.3} {:>10.2}",
                    v.name(),
                    best * 1e3,
                    p.flops() / best / 1e9
                );
            }
        }
    }
    Ok(())
}
