//! The layout rules of `ARCHITECTURE.md` that a machine can check: one storage seam (only
//! `backend/` names backend variants), one room per pattern with the same four files, and
//! no source file past ~500 lines.

use std::fs;
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/redis-patterns/src");
const MACROS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/redis-patterns-macros/src");

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn files(root: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    rust_files(Path::new(root), &mut out);
    assert!(out.len() > 10, "found the sources under {root}");
    out
}

#[test]
fn only_the_backend_facade_names_backend_variants() {
    let backend = Path::new(SRC).join("backend");
    let mut offenders = Vec::new();
    for file in files(SRC) {
        if file.starts_with(&backend) {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let named = ["Backend::Redis", "Backend::Memory", "Backend::Unusable"]
                .iter()
                .any(|variant| line.contains(variant));
            if named {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "patterns must go through `Backend::run` and the facade's commands:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn every_pattern_room_has_its_api_operations_expansion_target_and_counters() {
    for room in ["cache", "counter", "lock", "rate_limit", "stream"] {
        for file in ["mod.rs", "ops.rs", "attribute.rs", "stats.rs"] {
            let path = Path::new(SRC).join(room).join(file);
            assert!(path.is_file(), "{} is missing", path.display());
        }
        // Atomic operations are Lua scripts (`scripts/<room>/`) or plain commands (a
        // `CommandOp` in the room's `ops.rs`).
        let scripts = Path::new(SRC).join("scripts").join(room);
        let lua = fs::read_dir(&scripts).map_or(0, |entries| {
            entries
                .filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "lua"))
                })
                .count()
        });
        let ops = fs::read_to_string(Path::new(SRC).join(room).join("ops.rs")).unwrap();
        assert!(
            lua > 0 || ops.contains("CommandOp for"),
            "{room} has its atomic operations as scripts in {} or as `CommandOp`s in its ops.rs",
            scripts.display()
        );
        for file in ["mod.rs", "parse.rs", "validate.rs", "expand.rs"] {
            let path = Path::new(MACROS).join(room).join(file);
            assert!(path.is_file(), "{} is missing", path.display());
        }
    }
    // Rooms without an attribute: the API, its operations and its counters.
    for room in ["leaderboard", "session"] {
        for file in ["mod.rs", "ops.rs", "stats.rs", "conformance.rs"] {
            let path = Path::new(SRC).join(room).join(file);
            assert!(path.is_file(), "{} is missing", path.display());
        }
    }
}

#[test]
fn no_source_file_runs_past_500_lines() {
    let mut long = Vec::new();
    for file in files(SRC).into_iter().chain(files(MACROS)) {
        let lines = fs::read_to_string(&file).unwrap().lines().count();
        if lines > 500 {
            long.push(format!("{}: {lines} lines", file.display()));
        }
    }
    assert!(long.is_empty(), "split these by job:\n{}", long.join("\n"));
}
