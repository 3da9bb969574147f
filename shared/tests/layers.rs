//! The library's layers only point down, and no module imports in a circle.
//!
//! Layers, bottom first: `base` (with the `ident` and `policy` crates), `aws`, `workflow`,
//! `flows`, `cli`. A module may use its own layer and those below it. Within the library,
//! the modules directly under a layer (`aws::rds`, `flows::import`, …) must not import each
//! other in a circle. Read from the source text: every `crate::…` path outside comments.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const LAYERS: [&str; 5] = ["base", "aws", "workflow", "flows", "cli"];
/// Crates of their own, re-exported at the root, below every layer.
const FOUNDATION_CRATES: [&str; 3] = ["datacheck", "ident", "policy"];
/// Root re-exports of `base::error`.
const ROOT_ERROR: [&str; 3] = ["Error", "ExitCode", "Result"];

fn layer_of(name: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == name)
}

/// A file's module path (`aws/rds/mod.rs` → `aws::rds`).
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().unwrap_or_default();
    let stem = file.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The source without comments (doc links are not imports).
fn code_of(source: &str) -> String {
    source
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::` path in the code, group imports expanded one level: `crate::{a::b, c}`
/// gives `a::b` and `c`.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `rds_handoff_crate::`, not ours
        }
        let items = if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            top_level_items(&group[..end])
        } else {
            vec![rest.to_owned()]
        };
        for item in items {
            let mut path: Vec<String> = Vec::new();
            for segment in item.split("::") {
                let segment = segment.trim();
                let name: String = segment
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let whole = name.len() == segment.len();
                if !name.is_empty() {
                    path.push(name);
                }
                if !whole || path.is_empty() {
                    break; // the path ends where something other than a name follows
                }
            }
            if !path.is_empty() {
                paths.push(path);
            }
        }
    }
    paths
}

fn top_level_items(group: &str) -> Vec<String> {
    let (mut items, mut current, mut depth) = (Vec::new(), String::new(), 0);
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items
}

/// The module an import path lands in, as a node of the import graph: the layer and its
/// child (`aws::rds`), or the layer itself for what its `mod.rs` re-exports. `None` for the
/// foundation crates.
fn node_of(path: &[String], children: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    let first = path.first()?.as_str();
    if FOUNDATION_CRATES.contains(&first) {
        return None;
    }
    if ROOT_ERROR.contains(&first) {
        return Some("base::error".into());
    }
    match path.get(1) {
        Some(child) if children.get(first).is_some_and(|c| c.contains(child)) => {
            Some(format!("{first}::{child}"))
        }
        _ => Some(first.to_owned()),
    }
}

/// Upward imports and circles in a tree given as (path under `src/`, source) pairs.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let modules: Vec<Vec<String>> = files.iter().map(|(p, _)| module_of(Path::new(p))).collect();
    let mut children: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for module in &modules {
        if let [layer, child, ..] = module.as_slice() {
            children
                .entry(layer.clone())
                .or_default()
                .insert(child.clone());
        }
    }
    let mut found = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((file, source), module) in files.iter().zip(&modules) {
        let Some(layer) = module.first() else {
            continue; // lib.rs declares the layers
        };
        let Some(own) = layer_of(layer) else {
            found.push(format!(
                "{file}: `{layer}` is in no layer; add it to LAYERS or move it"
            ));
            continue;
        };
        let from = module
            .iter()
            .take(2)
            .cloned()
            .collect::<Vec<_>>()
            .join("::");
        for path in crate_paths(&code_of(source)) {
            let Some(to) = node_of(&path, &children) else {
                continue;
            };
            let target_layer = to.split("::").next().and_then(layer_of);
            match target_layer {
                Some(target) if target > own => found.push(format!(
                    "{file}: `crate::{}` reaches up from layer `{layer}` to layer `{}`",
                    path.join("::"),
                    LAYERS[target]
                )),
                None => found.push(format!(
                    "{file}: `crate::{}` is in no layer",
                    path.join("::")
                )),
                _ => {}
            }
            if to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    found.extend(circles(&edges));
    found
}

/// Each circle in the import graph, once, as `a → b → a`.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<String>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut circle = stack[at..].to_vec();
            circle.push(node.to_owned());
            found.push(format!("import circle: {}", circle.join(" → ")));
            return;
        }
        if !done.insert(node.to_owned()) {
            return;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, stack, done, found);
        }
        stack.pop();
    }
    let (mut found, mut done) = (Vec::new(), BTreeSet::new());
    for node in edges.keys() {
        visit(node, edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

fn library_files(root: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn the_library_imports_only_downwards_and_in_no_circle() {
    let files = library_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(files.len() > 30, "read only {} files", files.len());
    let found = violations(&files);
    assert!(found.is_empty(), "layer violations:\n{}", found.join("\n"));
}

#[test]
fn an_upward_import_and_a_circle_are_caught() {
    let file = |path: &str, source: &str| (path.to_owned(), source.to_owned());
    let files = [
        file("lib.rs", "pub mod base; pub mod aws; pub mod flows;"),
        file("base/mod.rs", "pub mod error;"),
        file(
            "base/error.rs",
            "use crate::aws::rds::Listed; // a doc: crate::flows::import",
        ),
        file("aws/mod.rs", "pub mod rds; pub mod quota;"),
        file(
            "aws/rds.rs",
            "use crate::{base::error::Error, aws::quota::room};",
        ),
        file(
            "aws/quota.rs",
            "use crate::aws::rds::Listed;\nuse crate::Result;",
        ),
        file(
            "flows/import.rs",
            "use crate::{aws::rds, ident::AccountId, policy::PolicyDocument};",
        ),
    ];
    let found = violations(&files);
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("base/error.rs: `crate::aws::rds::Listed` reaches up")),
        "{found:?}"
    );
    assert!(
        !found.iter().any(|f| f.contains("flows::import")),
        "a comment is no import: {found:?}"
    );
    assert!(
        found.iter().any(|f| f.contains("import circle")
            && f.contains("aws::quota")
            && f.contains("aws::rds")),
        "{found:?}"
    );
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn the_policy_and_identifier_crates_build_without_the_aws_sdk_or_a_runtime() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for manifest in ["key-policy/Cargo.toml", "ident/Cargo.toml"] {
        let text = std::fs::read_to_string(workspace.join(manifest)).unwrap();
        for banned in ["aws-", "tokio", "reqwest", "hyper"] {
            assert!(!text.contains(banned), "{manifest} depends on `{banned}`");
        }
    }
}
