//! The crate's top-level modules depend on each other without a cycle (the order `lib.rs`
//! documents), and the library runs in-process: nothing of ours is process-wide state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the other top-level modules its code names as `crate::NAME`.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in crate::util::files(&src) {
        if file.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.iter().next().unwrap().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let entry = deps.entry(module.clone()).or_default();
        for line in text.lines() {
            // Comments name modules in prose and doc links; only code counts.
            let code = line.split("//").next().unwrap();
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    entry.insert(name);
                }
            }
        }
    }
    deps
}

/// A cycle through `from`, if any (depth-first search).
fn cycle(
    deps: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|m| m == from) {
        let mut found = path[at..].to_vec();
        found.push(from.to_string());
        return Some(found);
    }
    path.push(from.to_string());
    for next in deps.get(from).into_iter().flatten() {
        if let Some(found) = cycle(deps, next, path) {
            return Some(found);
        }
    }
    path.pop();
    None
}

#[test]
fn top_level_modules_form_no_cycle() {
    let deps = dependencies();
    assert!(
        deps.contains_key("engine") && deps.contains_key("app"),
        "{deps:?}"
    );
    for module in deps.keys() {
        if let Some(found) = cycle(&deps, module, &mut Vec::new()) {
            panic!("import cycle: {}", found.join(" -> "));
        }
    }
    // The layers lib.rs documents, spot-checked: the engine knows no mode.
    for mode in [
        "app",
        "load",
        "bench",
        "calibrate",
        "metrics",
        "config",
        "cli",
    ] {
        assert!(!deps["engine"].contains(mode), "engine uses {mode}");
    }
}

#[test]
fn the_library_runs_a_load_test_in_process() {
    use clap::Parser;
    use pgvector_loadtest::{cli::Cli, run, Exit};
    // Bad input first: refused before anything runs.
    let cli = Cli::try_parse_from(["pgvector-loadtest", "--max-failure-share", "2", "setup"]);
    assert_eq!(run(cli.unwrap()), Exit::Usage);
    // Then a whole run, seeding included, through the library's entry point in this process.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pg = runtime.block_on(crate::util::Pg::start());
    let reports = crate::util::temp_dir();
    let url = pg.url();
    let mut args = vec!["pgvector-loadtest".to_string()];
    args.extend(crate::util::load_args(&url, reports.path(), "4", "3s"));
    assert_eq!(run(Cli::try_parse_from(args).unwrap()), Exit::Success);
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(reports.path().join("load_test_summary.json")).unwrap(),
    )
    .unwrap();
    assert!(
        summary["aggregated"]["count"].as_u64().unwrap() > 10,
        "{summary}"
    );
    assert_eq!(summary["aggregated"]["failed"].as_u64(), Some(0));
    runtime.block_on(pg.stop());
}

/// Functions outside tests longer than `limit` lines that carry no `// Long (...)` comment
/// saying why, as `file:line name (lines)`. Brace counting is enough for our formatting
/// (rustfmt's): a function ends on the line where its braces balance.
fn long_functions(limit: usize) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for file in crate::util::files(&src) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".rs") || name == "tests.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i].trim_start();
            if line.starts_with("#[cfg(test)]") {
                break;
            }
            let is_fn = [
                "fn ",
                "pub fn ",
                "async fn ",
                "pub async fn ",
                "pub(crate) fn ",
            ]
            .iter()
            .any(|p| line.starts_with(p));
            if !is_fn {
                i += 1;
                continue;
            }
            let (mut depth, mut opened, mut end) = (0i64, false, i);
            for (j, l) in lines.iter().enumerate().skip(i) {
                depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
                opened |= l.contains('{');
                end = j;
                if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                    break;
                }
            }
            let length = end - i + 1;
            let reason = lines[i.saturating_sub(4)..i]
                .iter()
                .any(|l| l.trim_start().starts_with("// Long ("));
            if length > limit && !reason {
                let rel = file.strip_prefix(&src).unwrap().display();
                found.push(format!("src/{rel}:{} ({length} lines)", i + 1));
            }
            i = end + 1;
        }
    }
    found
}

#[test]
fn no_function_is_long_without_a_reason() {
    // The scan sees functions at all: many in src are over 30 lines.
    let strict = long_functions(30);
    assert!(!strict.is_empty(), "the scan found no function at all");
    let long = long_functions(85);
    assert!(
        long.is_empty(),
        "split these, or say why they are long in a `// Long (...)` comment above them: {long:?}"
    );
}
