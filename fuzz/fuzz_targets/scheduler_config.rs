//! Arbitrary bytes as `scheduler_config.json`, then timesteps for a few step
//! counts: typed errors only, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use optedit_schedule::{DdimInverseScheduler, DdimScheduler, SchedulerConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = SchedulerConfig::from_json_str(text) else { return };
    if config.num_train_timesteps > 100_000 {
        return;
    }
    if let Ok(mut s) = DdimScheduler::new(config.clone()) {
        for n in [1, 7, 50] {
            let _ = s.set_timesteps(n);
        }
    }
    if let Ok(mut s) = DdimInverseScheduler::new(config) {
        let _ = s.set_timesteps(10);
    }
});
