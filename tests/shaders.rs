//! Every file in shaders/ parses, validates, fits wgpu's default (portable) limits,
//! and translates to SPIR-V, MSL, HLSL and GLSL with naga's back ends. A broken
//! shader fails here with its file and line, before any GPU runs.

use naga::back;
use naga::valid::{Capabilities, ValidationFlags, Validator};

/// The modules as the binary embeds them (build.rs expands the `//@` directives).
fn shader_files() -> Vec<(String, String)> {
    let v: Vec<_> = gpu_nids::gpu::kernel::shaders()
        .iter()
        .map(|(name, src)| (format!("shaders/{name}.wgsl"), src.to_string()))
        .collect();
    assert!(!v.is_empty(), "no shaders found");
    v
}

fn check_one(path: &str, src: &str) -> Result<(), String> {
    let module =
        naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string_with_path(src, path))?;
    // Subgroup operations: only the matmul_sg*, conv2d_sg and batchnorm_sg kernels use
    // them, and the host runs those only on adapters with 8-lane subgroups
    // (src/nn/matmul.rs, `sg8`).
    let info = Validator::new(
        ValidationFlags::all(),
        Capabilities::SHADER_FLOAT16 | Capabilities::SUBGROUP,
    )
    .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
    .subgroup_operations(naga::valid::SubgroupOperationSet::all())
    .validate(&module)
    .map_err(|e| e.emit_to_string_with_path(src, path))?;

    // Portable limits: wgpu::Limits::default().
    let limits = wgpu::Limits::default();
    let mut layouter = naga::proc::Layouter::default();
    layouter
        .update(module.to_ctx())
        .map_err(|e| format!("{path}: {e}"))?;
    for ep in &module.entry_points {
        let [x, y, z] = ep.workgroup_size;
        if x * y * z > limits.max_compute_invocations_per_workgroup {
            return Err(format!(
                "{path}: {} uses {} invocations per workgroup (portable limit {})",
                ep.name,
                x * y * z,
                limits.max_compute_invocations_per_workgroup
            ));
        }
    }
    let shared: u32 = module
        .global_variables
        .iter()
        .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
        .map(|(_, g)| layouter[g.ty].size)
        .sum();
    if shared > limits.max_compute_workgroup_storage_size {
        return Err(format!(
            "{path}: {shared} bytes of workgroup memory (portable limit {})",
            limits.max_compute_workgroup_storage_size
        ));
    }
    let storage = module
        .global_variables
        .iter()
        .filter(|(_, g)| matches!(g.space, naga::AddressSpace::Storage { .. }))
        .count() as u32;
    if storage > limits.max_storage_buffers_per_shader_stage {
        return Err(format!(
            "{path}: {storage} storage buffers (portable limit {})",
            limits.max_storage_buffers_per_shader_stage
        ));
    }
    // Host code binds the params uniform at 0 and storage buffers after it; see src/gpu/kernel.rs.
    gpu_nids::gpu::kernel::reflect(path, src).map_err(|e| e.to_string())?;

    back::spv::write_vec(&module, &info, &back::spv::Options::default(), None)
        .map_err(|e| format!("{path}: SPIR-V: {e}"))?;
    back::msl::write_string(
        &module,
        &info,
        &back::msl::Options::default(),
        &back::msl::PipelineOptions::default(),
    )
    .map_err(|e| format!("{path}: MSL: {e}"))?;
    let hlsl_opts = back::hlsl::Options::default();
    let hlsl_pipe = back::hlsl::PipelineOptions::default();
    let mut hlsl = String::new();
    back::hlsl::Writer::new(&mut hlsl, &hlsl_opts, &hlsl_pipe)
        .write(&module, &info, None)
        .map_err(|e| format!("{path}: HLSL: {e}"))?;
    for ep in &module.entry_points {
        let opts = back::glsl::Options {
            version: back::glsl::Version::Desktop(430),
            ..Default::default()
        };
        let pipe = back::glsl::PipelineOptions {
            shader_stage: ep.stage,
            entry_point: ep.name.clone(),
            multiview: None,
        };
        let mut glsl = String::new();
        back::glsl::Writer::new(
            &mut glsl,
            &module,
            &info,
            &opts,
            &pipe,
            naga::proc::BoundsCheckPolicies::default(),
        )
        .and_then(|mut w| w.write().map(|_| ()))
        .map_err(|e| format!("{path}: GLSL ({}): {e}", ep.name))?;
    }
    Ok(())
}

#[test]
fn every_shader_validates_and_translates() {
    let mut failures = Vec::new();
    for (path, src) in shader_files() {
        if let Err(e) = check_one(&path, &src) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_broken_shader_is_reported_with_file_and_line() {
    let src = "@compute @workgroup_size(1)\nfn main() {\n  let x: f32 = undefined_thing;\n}\n";
    let err = check_one("shaders/broken.wgsl", src).unwrap_err();
    assert!(
        err.contains("shaders/broken.wgsl:3"),
        "error lacks file:line: {err}"
    );
}
