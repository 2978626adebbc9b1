//! The core's modules call each other in layers: this test fails when a module cycle that was
//! untangled comes back (heap and init calling each other; alloc, check and remote in a circle).
//! It reads the sources: module `a` depends on `b` when `a`'s code (outside its `#[cfg(test)]`
//! module and comments) names `crate::b`. Two modules in one cycle reach each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Pairs of modules that must not be in one cycle.
const APART: &[(&str, &str)] = &[
    ("heap", "init"),
    ("alloc", "check"),
    ("alloc", "remote"),
    ("check", "remote"),
];

/// Each module's dependencies, from `crate::NAME` in its non-test code.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.extension().is_none_or(|e| e != "rs") || name == "tests" || name == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // The unit tests sit in a `#[cfg(test)]` module at the end of the file.
        let code = text.split("#[cfg(test)]").next().unwrap();
        let mut deps = BTreeSet::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap();
            for (i, _) in line.match_indices("crate::") {
                let dep: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !dep.is_empty() && dep != name && src.join(format!("{dep}.rs")).exists() {
                    deps.insert(dep);
                }
            }
        }
        g.insert(name, deps);
    }
    g
}

/// A path of dependencies from `from` to `to`, if there is one.
fn path(g: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from.to_string()]);
    while let Some(m) = queue.pop_front() {
        for d in g.get(&m).into_iter().flatten() {
            if d == to {
                let mut p = vec![to.to_string(), m.clone()];
                while let Some(q) = prev.get(p.last().unwrap()) {
                    p.push(q.clone());
                }
                p.reverse();
                return Some(p);
            }
            if d != from && !prev.contains_key(d) {
                prev.insert(d.clone(), m.clone());
                queue.push_back(d.clone());
            }
        }
    }
    None
}

#[test]
fn untangled_module_cycles_stay_untangled() {
    let g = graph();
    assert!(
        g.len() > 10 && g["alloc"].contains("heap"),
        "the source scan found {g:?}"
    );
    for &(a, b) in APART {
        if let (Some(there), Some(back)) = (path(&g, a, b), path(&g, b, a)) {
            panic!(
                "modules {a} and {b} are in one cycle again: {} and {}",
                there.join(" -> "),
                back.join(" -> ")
            );
        }
    }
}
