//! The README's library quick start is the crate doctest's code: this keeps them from drifting.

#[test]
fn readme_quick_start_is_the_crate_doctest() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let lib = std::fs::read_to_string(format!("{root}/crates/custmetrics/src/lib.rs")).unwrap();
    // The doctest: `//! ```` to `//! ````, without hidden (`# `) lines.
    let doc: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .skip_while(|l| *l != "```")
        .skip(1)
        .take_while(|l| *l != "```")
        .filter(|l| !l.starts_with("# "))
        .collect();
    let block: Vec<&str> = readme
        .split("## Library usage")
        .nth(1)
        .and_then(|s| s.split("```rust\n").nth(1))
        .and_then(|s| s.split("```").next())
        .unwrap()
        .lines()
        .collect();
    assert!(doc.len() > 5, "doctest not found: {doc:?}");
    assert_eq!(
        block, doc,
        "README quick start differs from the doctest in lib.rs"
    );
}
