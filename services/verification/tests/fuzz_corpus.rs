//! The fuzz targets' kept corpus and every crash kept as a regression (libs/fuzz), replayed through the targets'
//! own code on every `make test`: a parser that comes to panic on any of them fails here, without libFuzzer.

#[path = "../../../libs/fuzz/src/targets.rs"]
mod targets;

#[test]
fn every_kept_input_of_every_fuzz_target_ends_without_a_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../libs/fuzz");
    for (name, target) in targets::TARGETS {
        let mut kept = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                eprintln!("{name}: {}", path.display());
                target(&std::fs::read(&path).expect("a kept input"));
                kept += 1;
            }
        }
        assert!(
            kept >= 3,
            "{name} keeps only {kept} inputs in libs/fuzz/corpus"
        );
    }
}
