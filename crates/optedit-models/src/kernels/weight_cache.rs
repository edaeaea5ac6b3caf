//! A process-wide cache of values derived from weight tensors: the
//! Winograd transform of a convolution's filter (`winograd.rs`), which
//! otherwise is recomputed on every call. At SD 1.5's 32x32 and 64x64
//! levels the transforms are 16/9 of the weights of their convolutions,
//! about 560 MB written (and, above glibc's 32 MiB mmap threshold, paged in
//! fresh) per UNet pass, forward and input gradient each.
//!
//! An entry holds a clone of the weight's `FlexTensor`, which shares the
//! weight's storage: while the entry lives the storage can be neither freed
//! (so no other tensor can take its address) nor changed in place (`Flex`
//! writes in place only into storage nobody else holds), so the address
//! and length of the weight's elements identify its values (several
//! weights may be views of one storage). A storage whose clone here is its
//! last holder (the model was dropped) is removed with its values at the
//! next lookup. A value is kept from its second making on (a weight used
//! once costs no memory), and only while the kept values stay within
//! [`set_weight_cache_limit`]'s bound; the rest are made on every call (a
//! model's layers are called in a cycle, in which evicting the least
//! recently used value would evict each before its next use). Lowering
//! the bound drops the least recently used values.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use burn_flex::FlexTensor;

/// The default bound of [`set_weight_cache_limit`]: 1 GiB.
pub const DEFAULT_WEIGHT_CACHE_LIMIT: usize = 1 << 30;

/// The bound, in bytes of derived values.
static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_WEIGHT_CACHE_LIMIT);

/// Bounds the memory that the kernels keep for values derived from weights
/// (the Winograd transforms of f32 3x3 convolution filters, 16/9 of the
/// filter's size; 0.53 GiB in a default SD 1.5 edit), in bytes, for the
/// whole process; returns the previous bound. A value is kept from its
/// second making on, so weights used once (a VAE's, in a single edit) keep
/// nothing. `0` keeps nothing: every call transforms its weight again (SD
/// 1.5's UNet forward+backward measured 3-4% slower, with 0.55 GB less
/// peak memory). The default is [`DEFAULT_WEIGHT_CACHE_LIMIT`]. Lowering
/// the bound drops the least recently used values at once; values of a
/// dropped model go at the next convolution. Results do not depend on the
/// bound, only time and memory.
pub fn set_weight_cache_limit(bytes: usize) -> usize {
    let previous = LIMIT.swap(bytes, Ordering::Relaxed);
    lock(&CACHE).shrink(bytes);
    previous
}

/// Bytes of derived values the cache holds now.
pub fn weight_cache_bytes() -> usize {
    lock(&CACHE).bytes
}

/// A weight's storage and the values derived from the weights in it.
struct Stored {
    /// A clone of a weight: keeps the storage alive and unchanged. One per
    /// storage, so that it is the last holder exactly when the model has
    /// dropped every weight in it.
    owner: FlexTensor,
    /// The storage's address and length.
    at: Span,
    derived: Vec<Derived>,
}

/// One value derived from a weight.
struct Derived {
    /// The weight's elements' address and length.
    weight: Span,
    /// What was derived (see [`derived`]).
    kind: u64,
    value: Arc<Vec<f32>>,
    /// The lookup count at its last use.
    used: u64,
}

#[derive(Default)]
struct Cache {
    stored: Vec<Stored>,
    /// Bytes of the derived values.
    bytes: usize,
    /// Lookups so far.
    clock: u64,
    /// Weights and kinds made once and not kept, the most recent last: a
    /// value is kept from its second making on, so that a weight used once
    /// (a VAE's in a single edit) costs no memory. Holding no storage, an
    /// entry may outlive its weight; a new weight at the same address is
    /// then kept from its first second-making, which changes nothing but
    /// memory.
    seen: std::collections::VecDeque<(Span, u64)>,
}

/// Most entries of [`Cache::seen`].
const SEEN: usize = 4096;

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    stored: Vec::new(),
    bytes: 0,
    clock: 0,
    seen: std::collections::VecDeque::new(),
});

/// `cache` locked. A panic while it was locked leaves entries that are
/// each whole, so a poisoned lock is taken as it is.
fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    cache.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An address and a length in bytes.
type Span = (usize, usize);

fn span<T>(values: &[T]) -> Span {
    (values.as_ptr() as usize, std::mem::size_of_val(values))
}

fn size(value: &[f32]) -> usize {
    std::mem::size_of_val(value)
}

impl Cache {
    /// Removes the values of dropped weights, then the least recently
    /// used until at most `limit` bytes remain (only after the bound was
    /// lowered: an insertion never passes it).
    fn shrink(&mut self, limit: usize) {
        let before = self.stored.len();
        self.stored.retain(|s| !s.owner.is_unique());
        if self.stored.len() != before {
            self.bytes = self
                .stored
                .iter()
                .flat_map(|s| &s.derived)
                .map(|d| size(&d.value))
                .sum();
        }
        while self.bytes > limit {
            let oldest = self
                .stored
                .iter()
                .enumerate()
                .flat_map(|(i, s)| {
                    s.derived
                        .iter()
                        .enumerate()
                        .map(move |(j, d)| (d.used, i, j))
                })
                .min();
            let Some((_, i, j)) = oldest else { break };
            let gone = self.stored[i].derived.swap_remove(j);
            self.bytes -= size(&gone.value);
            if self.stored[i].derived.is_empty() {
                self.stored.swap_remove(i);
            }
        }
    }

    /// The value of `kind` derived from the weight at `weight` in the
    /// storage at `at`, marked used.
    fn find(&mut self, at: Span, weight: Span, kind: u64) -> Option<Arc<Vec<f32>>> {
        self.clock += 1;
        let now = self.clock;
        let stored = self.stored.iter_mut().find(|s| s.at == at)?;
        let derived = stored
            .derived
            .iter_mut()
            .find(|d| d.weight == weight && d.kind == kind)?;
        derived.used = now;
        Some(derived.value.clone())
    }

    /// Keeps `value`, of `kind` derived from the weight at `weight` in
    /// `owner`'s storage, unless it is there.
    fn insert(&mut self, owner: &FlexTensor, weight: Span, kind: u64, value: &Arc<Vec<f32>>) {
        let at = span(owner.bytes());
        let index = match self.stored.iter().position(|s| s.at == at) {
            Some(i) => i,
            None => {
                self.stored.push(Stored {
                    owner: owner.clone(),
                    at,
                    derived: Vec::new(),
                });
                self.stored.len() - 1
            }
        };
        let stored = &mut self.stored[index];
        if stored
            .derived
            .iter()
            .all(|d| (d.weight, d.kind) != (weight, kind))
        {
            stored.derived.push(Derived {
                weight,
                kind,
                value: value.clone(),
                used: self.clock,
            });
            self.bytes += size(value);
        }
    }
}

/// The value derived from `weight`, the elements of tensor `owner`, by
/// `make`, from the cache when an earlier call with the same elements and
/// `kind` made it. `kind` must name everything besides the weight's values
/// that the result depends on (the derivation and the shape it reads the
/// weight as).
pub(crate) fn derived(
    owner: &FlexTensor,
    weight: &[f32],
    kind: u64,
    make: impl FnOnce() -> Vec<f32>,
) -> Arc<Vec<f32>> {
    derived_in(
        &CACHE,
        LIMIT.load(Ordering::Relaxed),
        owner,
        weight,
        kind,
        make,
    )
}

/// [`derived`] with cache `cache` bounded by `limit` bytes.
fn derived_in(
    cache: &Mutex<Cache>,
    limit: usize,
    owner: &FlexTensor,
    weight: &[f32],
    kind: u64,
    make: impl FnOnce() -> Vec<f32>,
) -> Arc<Vec<f32>> {
    let (at, weight) = (span(owner.bytes()), span(weight));
    debug_assert!(weight.0 >= at.0 && weight.0 + weight.1 <= at.0 + at.1);
    {
        let mut cache = lock(cache);
        cache.shrink(limit);
        if let Some(value) = cache.find(at, weight, kind) {
            return value;
        }
    }
    // Made outside the lock: other threads' lookups go on meanwhile.
    let value = Arc::new(make());
    let mut cache = lock(cache);
    // Kept from the second making on (`Cache::seen`), and only where it
    // fits: a model whose values pass the bound keeps the first that fit
    // and makes the others on every call, where evicting the least
    // recently used would, with the layers called in a cycle, evict each
    // value before its next use.
    let first = match cache.seen.iter().position(|&s| s == (weight, kind)) {
        Some(i) => {
            cache.seen.remove(i);
            false
        }
        None => true,
    };
    if first {
        if cache.seen.len() == SEEN {
            cache.seen.pop_front();
        }
        cache.seen.push_back((weight, kind));
    } else if cache.bytes + size(&value) <= limit {
        cache.insert(owner, weight, kind, &value);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn tensor(values: &[f32]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values.to_vec(), [values.len()]))
    }

    fn elements(t: &FlexTensor) -> &[f32] {
        t.as_slice::<f32>().unwrap()
    }

    fn bytes(cache: &Mutex<Cache>) -> usize {
        cache.lock().unwrap().bytes
    }

    #[test]
    fn a_weight_is_kept_from_its_second_making_and_dropped_with_its_model() {
        let cache = Mutex::new(Cache::default());
        let weight = tensor(&[1.0, 2.0, 3.0]);
        let calls = std::cell::Cell::new(0);
        let twice = |w: &FlexTensor| {
            derived_in(&cache, 1 << 20, w, elements(w), 1, || {
                calls.set(calls.get() + 1);
                elements(w).iter().map(|v| v * 2.0).collect()
            })
        };
        assert_eq!(*twice(&weight), vec![2.0, 4.0, 6.0]);
        assert_eq!(bytes(&cache), 0, "made once: not kept");
        assert_eq!(*twice(&weight.clone()), vec![2.0, 4.0, 6.0]);
        assert_eq!(bytes(&cache), 12, "a clone shares the storage: kept");
        assert_eq!(*twice(&weight), vec![2.0, 4.0, 6.0]);
        assert_eq!(calls.get(), 2, "the third call finds it");
        // Another weight with equal values is another storage.
        let other = tensor(&[1.0, 2.0, 3.0]);
        assert_eq!(*twice(&other), vec![2.0, 4.0, 6.0]);
        assert_eq!(*twice(&other), vec![2.0, 4.0, 6.0]);
        assert_eq!(calls.get(), 4);
        assert!(!weight.is_unique(), "the cache holds the storage");
        assert_eq!(bytes(&cache), 24);
        // Another kind from the same weight is another value.
        for _ in 0..2 {
            let _ = derived_in(&cache, 1 << 20, &other, elements(&other), 2, || vec![0.0]);
        }
        assert_eq!(bytes(&cache), 28);
        // The model drops its weight: the entry goes at the next lookup.
        drop(weight);
        let _ = derived_in(&cache, 1 << 20, &other, elements(&other), 2, || {
            unreachable!("kept")
        });
        assert_eq!(bytes(&cache), 16);
        drop(other);
        cache.lock().unwrap().shrink(1 << 20);
        assert_eq!(bytes(&cache), 0);
    }

    #[test]
    fn weights_that_are_views_of_one_storage_are_told_apart() {
        use burn::tensor::Shape;
        use burn_flex::Layout;
        let cache = Mutex::new(Cache::default());
        let storage = tensor(&[1.0, 2.0, 3.0, 4.0]);
        let view = |start: usize| {
            let layout = Layout::new(Shape::new([2]), vec![1], start);
            FlexTensor::from_arc(storage.data_arc(), layout, storage.dtype())
        };
        let (low, high) = (view(0), view(2));
        drop(storage);
        let sum = |w: &FlexTensor| {
            derived_in(&cache, 1 << 20, w, elements(w), 1, || {
                vec![elements(w).iter().sum()]
            })
        };
        for _ in 0..2 {
            assert_eq!(*sum(&low), vec![3.0]);
            assert_eq!(*sum(&high), vec![7.0], "another view: another value");
        }
        assert_eq!(*sum(&high.clone()), vec![7.0]);
        assert_eq!(bytes(&cache), 8);
        // One weight of the storage dropped: its value stays with the
        // storage; both dropped: the storage and its values go.
        drop(low);
        cache.lock().unwrap().shrink(1 << 20);
        assert_eq!(bytes(&cache), 8);
        drop(high);
        cache.lock().unwrap().shrink(1 << 20);
        assert_eq!(bytes(&cache), 0);
    }

    #[test]
    fn values_are_kept_while_they_fit_and_a_lower_bound_drops_the_oldest() {
        let cache = Mutex::new(Cache::default());
        let (a, b, c) = (tensor(&[1.0]), tensor(&[2.0]), tensor(&[3.0]));
        let made = std::cell::RefCell::new(Vec::new());
        let get = |w: &FlexTensor, name: &'static str, limit: usize| {
            let _ = derived_in(&cache, limit, w, elements(w), 1, || {
                made.borrow_mut().push(name);
                vec![0.0; 1]
            });
        };
        for _ in 0..2 {
            get(&a, "a", 8);
            get(&b, "b", 8);
        }
        get(&c, "c", 8);
        get(&c, "c", 8); // 12 bytes > 8: c is not kept
        get(&c, "c", 8);
        get(&b, "b", 8); // b and a stay
        get(&a, "a", 8); // a is now the most recently used
        assert_eq!(*made.borrow(), ["a", "b", "a", "b", "c", "c", "c"]);
        assert_eq!(bytes(&cache), 8);
        get(&a, "a", 4); // a lower bound drops b, the least recently used
        get(&b, "b", 4);
        get(&b, "b", 4); // made again: 8 bytes > 4
        assert_eq!(made.borrow().len(), 9);
        get(&a, "a", 0); // a bound of 0 keeps nothing
        get(&a, "a", 0);
        assert_eq!(made.borrow()[9..], ["a", "a"]);
        assert_eq!(bytes(&cache), 0);
    }

    #[test]
    fn the_record_of_values_made_once_is_bounded() {
        let cache = Mutex::new(Cache::default());
        let weights: Vec<FlexTensor> = (0..SEEN + 1).map(|i| tensor(&[i as f32])).collect();
        for w in &weights {
            let _ = derived_in(&cache, 1 << 30, w, elements(w), 1, || vec![0.0]);
        }
        assert_eq!(cache.lock().unwrap().seen.len(), SEEN);
        // The first weight's record went: its next making is a first again.
        let _ = derived_in(
            &cache,
            1 << 30,
            &weights[0],
            elements(&weights[0]),
            1,
            || vec![0.0],
        );
        assert_eq!(bytes(&cache), 0);
        let last = &weights[SEEN];
        let _ = derived_in(&cache, 1 << 30, last, elements(last), 1, || vec![0.0]);
        assert_eq!(bytes(&cache), 4);
    }

    #[test]
    fn the_process_wide_bound_is_set_and_put_back() {
        let previous = set_weight_cache_limit(DEFAULT_WEIGHT_CACHE_LIMIT);
        assert_eq!(set_weight_cache_limit(previous), DEFAULT_WEIGHT_CACHE_LIMIT);
    }
}
