//! Embeds every shaders/*.wgsl into the binary, so adding a kernel is adding a file.
//! WGSL has no includes: a line `//@include NAME` is replaced here by
//! shaders/include/NAME, so what several kernels share (a params struct, a helper) is
//! written once. Diagnostics of naga then count lines of the expanded source.
use std::{env, fs, path::Path};

fn expand(path: &Path, include_dir: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line.trim().strip_prefix("//@include ") {
            Some(name) => {
                let inc = include_dir.join(name.trim());
                println!("cargo:rerun-if-changed={}", inc.display());
                let body = fs::read_to_string(&inc).unwrap_or_else(|e| {
                    panic!("{}: //@include {}: {e}", path.display(), inc.display())
                });
                out += &body;
                if !body.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => {
                out += line;
                out.push('\n');
            }
        }
    }
    out
}

fn main() {
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("shaders");
    let include_dir = root.join("include");
    let out_dir = Path::new(&env::var("OUT_DIR").unwrap()).join("shaders");
    fs::create_dir_all(&out_dir).unwrap();
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed={}", include_dir.display());
    let mut names: Vec<_> = fs::read_dir(&root)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::from("pub static SHADERS: &[(&str, &str)] = &[\n");
    for p in &names {
        println!("cargo:rerun-if-changed={}", p.display());
        let stem = p.file_stem().unwrap().to_string_lossy();
        let expanded = out_dir.join(p.file_name().unwrap());
        fs::write(&expanded, expand(p, &include_dir)).unwrap();
        out += &format!(
            "    ({stem:?}, include_str!({:?})),\n",
            expanded.display().to_string()
        );
    }
    out += "];\n";
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("shaders.rs"),
        out,
    )
    .unwrap();
}
