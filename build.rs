//! Embeds every shaders/*.wgsl into the binary, so adding a kernel is adding a file.
use std::{env, fs, path::Path};

fn main() {
    let dir = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("shaders");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<_> = fs::read_dir(&dir)
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
        out += &format!(
            "    ({stem:?}, include_str!({:?})),\n",
            p.display().to_string()
        );
    }
    out += "];\n";
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("shaders.rs"),
        out,
    )
    .unwrap();
}
