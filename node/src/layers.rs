//! The module order of `node/src`, lowest layer first, checked: a module may use only
//! modules of lower layers (`docs/architecture.md`, "Module map", explains each layer).
//! A new module goes into a layer here; a use that goes up or sideways fails the test,
//! which names it.

use std::collections::BTreeMap;
use std::path::Path;

const LAYERS: &[&[&str]] = &[
    &["error", "clock", "access", "retention", "shifts", "zones", "worker"],
    &["audit", "files", "tls"],
    &["meta"],
    &["segment", "ingest", "export", "webhooks"],
    &["config"],
    &["cluster", "clock_jump", "report"],
    &["recorder", "expiry", "picture", "init", "standby"],
    &["backup"],
    &["alarms", "scrub"],
    &["server"],
    &["web", "metrics", "seal", "start"],
];

/// The source of each top-level module, without comments and test modules.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if ["lib", "main", "layers"].contains(&name.as_str()) {
            continue;
        }
        let mut files = vec![];
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                for f in std::fs::read_dir(d).unwrap() {
                    let f = f.unwrap().path();
                    if f.is_dir() {
                        stack.push(f);
                    } else if f.extension().is_some_and(|x| x == "rs") && f.file_name().unwrap() != "tests.rs" {
                        files.push(f);
                    }
                }
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
        let mut text = String::new();
        for f in files {
            let s = std::fs::read_to_string(&f).unwrap();
            let s = s.split("#[cfg(test)]").next().unwrap();
            for line in s.lines().filter(|l| !l.trim_start().starts_with("//")) {
                text.push_str(line);
                text.push('\n');
            }
        }
        out.insert(name, text);
    }
    out
}

/// The top-level modules `text` names through `crate::`, also inside `crate::{a, b::c}`.
fn used_modules(text: &str) -> Vec<String> {
    let ident =
        |s: &str| -> String { s.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect() };
    let mut out = vec![];
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split at commas outside nested braces.
            let mut depth = 0;
            let mut start = 0;
            for (i, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push(ident(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(ident(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out
}

#[test]
fn a_grouped_use_names_each_module() {
    let found = used_modules("use crate::{meta::{Meta, Camera}, segment::BlobStore};\nlet x = crate::cluster::X;");
    assert_eq!(found, ["meta", "segment", "cluster"]);
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let layer_of: BTreeMap<&str, usize> =
        LAYERS.iter().enumerate().flat_map(|(i, l)| l.iter().map(move |m| (*m, i))).collect();
    for m in mods.keys() {
        assert!(layer_of.contains_key(m.as_str()), "module {m} is in no layer: add it to LAYERS in node/src/layers.rs");
    }
    let mut wrong = vec![];
    for (m, text) in &mods {
        for target in used_modules(text) {
            if target == *m || !layer_of.contains_key(target.as_str()) {
                continue;
            }
            if layer_of[target.as_str()] >= layer_of[m.as_str()] {
                wrong.push(format!(
                    "{m} (layer {}) uses {target} (layer {})",
                    layer_of[m.as_str()],
                    layer_of[target.as_str()]
                ));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "uses that go up or sideways:\n{}", wrong.join("\n"));
}
