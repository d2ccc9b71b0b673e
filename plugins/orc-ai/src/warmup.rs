//! Loading the backends present in BACKENDSPATH in the background when the module loads,
//! so that no client's first request pays for a runtime's start (libtorch takes most of a
//! second, longer than SmartRedis's default socket timeout). The server is ready at once;
//! a request that needs a backend still loading waits for it. Module argument
//! `BACKENDS_WARMUP no` turns this off.

use std::time::Instant;

use crate::{
    model::Backend,
    objects::backend,
    state::{lock, log_notice, log_warning, state},
};

/// The order backends warm up in: the slowest to start first.
const ORDER: [Backend; 4] = [Backend::Torch, Backend::Onnx, Backend::TfLite, Backend::Tf];

/// Start the background loading (returns at once).
pub fn start() {
    let present: Vec<Backend> = {
        let c = lock(&state().config);
        ORDER
            .into_iter()
            .filter(|b| c.default_backend_files(*b).iter().any(|f| f.is_file()))
            .collect()
    };
    if present.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("orc-ai-warmup".into())
        .spawn(move || {
            for b in present {
                let t = Instant::now();
                match backend(b) {
                    Ok(l) => log_notice(format!(
                        "orc-ai: the {} backend is ready ({}) after {:.2} s",
                        b.name(),
                        l.runtime,
                        t.elapsed().as_secs_f64()
                    )),
                    Err(e) => log_warning(format!(
                        "orc-ai: the {} backend could not be loaded at start: {e}",
                        b.name()
                    )),
                }
            }
        });
    if let Err(e) = spawned {
        log_warning(format!(
            "orc-ai: cannot start the backend warm-up thread: {e}"
        ));
    }
}
