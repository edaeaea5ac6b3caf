//! Checked device selection: burn's GPU backends panic inside their first
//! operation when no driver or GPU is present; `cuda()` (feature `cuda`)
//! turns that into a [`ModelError::Device`] a binary can print.

use crate::error::{ModelError, Result};

/// Runs `probe` with panics caught and silenced. The error's reason is the
/// message of the first panic raised meanwhile on any thread (a backend
/// often fails in its device thread and the caller only sees a closed
/// channel), else the probe's own panic message.
///
/// While `probe` runs, the process-wide panic hook is replaced (and restored
/// afterwards), so a panic on any other thread in that window is silenced
/// too. Call it at start-up, before the application's own threads run.
pub fn catch_backend_panic<T>(device: &str, probe: impl FnOnce() -> T) -> Result<T> {
    use std::sync::{Arc, Mutex};
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    let hook = std::panic::take_hook();
    let sink = Arc::clone(&first);
    std::panic::set_hook(Box::new(move |info| {
        let mut slot = sink.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(payload_message(info.payload()));
        }
    }));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(probe));
    std::panic::set_hook(hook);
    outcome.map_err(|payload| {
        let reason = first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| payload_message(payload.as_ref()));
        ModelError::Device {
            device: device.to_owned(),
            reason,
        }
    })
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "the backend panicked".to_owned())
}

/// The first CUDA device, after one small operation on it succeeded (the
/// driver loaded and the GPU answered); otherwise a [`ModelError::Device`]
/// with the backend's reason.
#[cfg(feature = "cuda")]
pub fn cuda() -> Result<burn::backend::cuda::CudaDevice> {
    use burn::tensor::Tensor;
    let device = burn::backend::cuda::CudaDevice::default();
    catch_backend_panic("cuda:0", || {
        Tensor::<burn::backend::Cuda, 1>::zeros([1], &device).into_data()
    })?;
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_panic_becomes_a_device_error_naming_the_device() {
        let err =
            catch_backend_panic("cuda:0", || -> u8 { panic!("libcuda.so not found") }).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device cuda:0 is not usable: libcuda.so not found"
        );
        assert_eq!(catch_backend_panic("cpu", || 3).unwrap(), 3);
        // A failure in another thread is the reason, not the symptom.
        let err = catch_backend_panic("cuda:0", || {
            let worker = std::thread::spawn(|| -> u8 { panic!("no CUDA driver") });
            worker.join().map_err(|_| "channel closed").unwrap()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "device cuda:0 is not usable: no CUDA driver"
        );
    }
}
