//! Embeds every shaders/*.wgsl into the binary, so adding a kernel is adding a file.
//!
//! WGSL has neither includes nor generics, so three small directives are expanded here
//! (naga's diagnostics then count lines of the expanded source):
//! - `//@include NAME` is replaced by shaders/include/NAME: what several kernels share
//!   (a params struct, a helper, an entry point's body) is written once.
//! - `//@variants MODULE:ROWS:ENTRY ...` makes one module per entry from the file, with
//!   `ROWS` and `ENTRY` bound: the same kernel at several tile heights.
//! - `//@for VAR in 0..EXPR: TEXT` writes TEXT once per value of VAR: the unrolled,
//!   literal-indexed row calls those kernels need (see shaders/include/sg_row_fma.wgsl).
//!
//! `${EXPR}` anywhere is replaced by its value: integers, the bound names (`ROWS`,
//! `GROUPS` = ROWS / 8, `ENTRY`, the loop variable) and + - * / % with the usual
//! precedence.
use std::collections::HashMap;
use std::{env, fs, path::Path};

type Vars = HashMap<String, String>;

fn eval(expr: &str, vars: &Vars, at: &str) -> String {
    let expr = expr.trim();
    if let Some(v) = vars.get(expr) {
        return v.clone();
    }
    let tokens: Vec<String> = {
        let mut t = Vec::new();
        let mut cur = String::new();
        for ch in expr.chars() {
            if "+-*/%".contains(ch) {
                t.push(std::mem::take(&mut cur));
                t.push(ch.to_string());
            } else if !ch.is_whitespace() {
                cur.push(ch);
            }
        }
        t.push(cur);
        t
    };
    let num = |s: &str| -> i64 {
        let v = vars.get(s).map(String::as_str).unwrap_or(s);
        v.parse()
            .unwrap_or_else(|_| panic!("{at}: `{s}` in `${{{expr}}}` is not a number"))
    };
    // Sum of products, left to right within each level.
    let mut sum = 0;
    let mut sign = 1;
    let mut i = 0;
    while i < tokens.len() {
        let mut prod = num(&tokens[i]);
        i += 1;
        while i + 1 < tokens.len() && "*/%".contains(tokens[i].as_str()) {
            let rhs = num(&tokens[i + 1]);
            prod = match tokens[i].as_str() {
                "*" => prod * rhs,
                "/" => prod / rhs,
                _ => prod % rhs,
            };
            i += 2;
        }
        sum += sign * prod;
        if i + 1 < tokens.len() {
            sign = if tokens[i] == "-" { -1 } else { 1 };
        }
        i += 1;
    }
    sum.to_string()
}

fn substitute(line: &str, vars: &Vars, at: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out += &rest[..start];
        let end = rest[start..]
            .find('}')
            .unwrap_or_else(|| panic!("{at}: unclosed ${{ in {line:?}"));
        out += &eval(&rest[start + 2..start + end], vars, at);
        rest = &rest[start + end + 1..];
    }
    out + rest
}

fn expand(text: &str, vars: &Vars, include_dir: &Path, at: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.lines().enumerate() {
        let at = format!("{at}:{}", n + 1);
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("//@include ") {
            let inc = include_dir.join(name.trim());
            println!("cargo:rerun-if-changed={}", inc.display());
            let body = fs::read_to_string(&inc)
                .unwrap_or_else(|e| panic!("{at}: //@include {}: {e}", inc.display()));
            out += &expand(&body, vars, include_dir, &inc.display().to_string());
        } else if let Some(spec) = trimmed.strip_prefix("//@for ") {
            let indent = &line[..line.len() - line.trim_start().len()];
            let (head, body) = spec
                .split_once(':')
                .unwrap_or_else(|| panic!("{at}: //@for VAR in 0..EXPR: TEXT"));
            let (var, range) = head
                .split_once(" in 0..")
                .unwrap_or_else(|| panic!("{at}: //@for VAR in 0..EXPR: TEXT"));
            let count: i64 = eval(range, vars, &at).parse().unwrap();
            for v in 0..count {
                let mut vars = vars.clone();
                vars.insert(var.trim().to_string(), v.to_string());
                out += indent;
                out += &substitute(body.trim(), &vars, &at);
                out.push('\n');
            }
        } else if trimmed.starts_with("//@variants ") {
            // Read by `variants`.
        } else {
            out += &substitute(line, vars, &at);
            out.push('\n');
        }
    }
    out
}

/// (module name, bound names) of each module a source gives.
fn variants(stem: &str, text: &str) -> Vec<(String, Vars)> {
    let Some(line) = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("//@variants "))
    else {
        return vec![(stem.to_string(), Vars::new())];
    };
    line.split_whitespace()
        .map(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            let [module, rows, entry] = parts[..] else {
                panic!("shaders/{stem}.wgsl: //@variants MODULE:ROWS:ENTRY, got {v:?}");
            };
            let rows: i64 = rows.parse().unwrap();
            let vars = Vars::from([
                ("ROWS".to_string(), rows.to_string()),
                ("GROUPS".to_string(), (rows / 8).to_string()),
                ("ENTRY".to_string(), entry.to_string()),
            ]);
            (module.to_string(), vars)
        })
        .collect()
}

fn main() {
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("shaders");
    let include_dir = root.join("include");
    let out_dir = Path::new(&env::var("OUT_DIR").unwrap()).join("shaders");
    fs::create_dir_all(&out_dir).unwrap();
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed={}", include_dir.display());
    let mut files: Vec<_> = fs::read_dir(&root)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut modules = Vec::new();
    for p in &files {
        println!("cargo:rerun-if-changed={}", p.display());
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        for (module, vars) in variants(&stem, &text) {
            let at = format!("shaders/{stem}.wgsl");
            let expanded = out_dir.join(format!("{module}.wgsl"));
            fs::write(&expanded, expand(&text, &vars, &include_dir, &at)).unwrap();
            modules.push((module, expanded));
        }
    }
    modules.sort();
    let mut out = String::from("pub static SHADERS: &[(&str, &str)] = &[\n");
    for (module, path) in &modules {
        out += &format!(
            "    ({module:?}, include_str!({:?})),\n",
            path.display().to_string()
        );
    }
    out += "];\n";
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("shaders.rs"),
        out,
    )
    .unwrap();
}
