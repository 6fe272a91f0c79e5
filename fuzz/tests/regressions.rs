//! Every saved input of every fuzz target, on stable: the seeds (real encodings, made by
//! `cargo run -p peerchain-fuzz --example make-seeds`) and every input a campaign found that once
//! crashed a target (`fuzz/regressions/<target>/`, kept after the fix).

use std::path::Path;

#[test]
fn every_saved_input_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for (name, target) in peerchain_fuzz::TARGETS {
        let mut inputs = 0;
        for folder in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(folder).join(name)) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name}: {} panics the target", path.display());
                inputs += 1;
            }
        }
        assert!(inputs > 0, "{name} has no saved inputs: run make-seeds");
        ran += inputs;
    }
    assert!(ran >= peerchain_fuzz::TARGETS.len());
}
