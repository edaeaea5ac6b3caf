//! The AMX kernel: four 16 x 16 f32 accumulator tiles (`tmm0`-`tmm3`),
//! two left tiles (`tmm4`, `tmm5`) and two right tiles (`tmm6`,
//! `tmm7`), all 16 rows of 64 bytes.

use std::arch::asm;
use std::arch::x86_64::__cpuid_count;
use std::ops::Range;

use super::{Out, Packed, BLOCK, STRIP};

/// CPUID says AMX-TILE and AMX-BF16, and Linux grants tile data.
pub(crate) fn available() -> bool {
    // CPUID leaf 7 reads as zeros on CPUs without it.
    let leaf = __cpuid_count(7, 0);
    let (bf16, tile) = ((leaf.edx >> 22) & 1 == 1, (leaf.edx >> 24) & 1 == 1);
    bf16 && tile && request_tile_data()
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`: 0 when the
/// process may use tile data (Linux 5.16 or later).
#[cfg(target_os = "linux")]
fn request_tile_data() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: a system call that only changes this process's
    // permission to use an extended state component.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

#[cfg(not(target_os = "linux"))]
fn request_tile_data() -> bool {
    false
}

/// Palette 1, eight tiles of 16 rows x 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

const CONFIG: TileConfig = {
    let mut c = [0u8; 64];
    c[0] = 1;
    let mut t = 0;
    while t < 8 {
        c[16 + 2 * t] = 64;
        c[48 + t] = 16;
        t += 1;
    }
    TileConfig(c)
};

/// One 2 x 2-tile product of left strips `s, s+1` and right strips
/// `t, t+1` over `steps` (not empty), stored at `c` (32 rows of 32 f32, `crow`
/// bytes apart); with `load`, added to what `c` holds.
///
/// # Safety
/// The tile configuration must be loaded, the strips must exist, and `c`
/// must address the whole 32 x 32 block.
#[inline]
unsafe fn tiles(
    packed: &Packed,
    (s, t): (usize, usize),
    steps: Range<usize>,
    (c, crow): (*mut f32, usize),
    load: bool,
) {
    let at = steps.start * BLOCK;
    let (a0, a1) = (packed.lhs(s).add(at), packed.lhs(s + 1).add(at));
    let (b0, b1) = (packed.rhs(t).add(at), packed.rhs(t + 1).add(at));
    let step = (BLOCK * 2) as isize;
    let (c1, c2) = (c.wrapping_add(16), c.wrapping_byte_add(16 * crow));
    let c3 = c2.wrapping_add(16);
    // SAFETY: the accumulator tiles start as zeros or as the block at c.
    unsafe {
        if load {
            asm!(
                "tileloadd tmm0, [{c} + {crow}*1]",
                "tileloadd tmm1, [{c1} + {crow}*1]",
                "tileloadd tmm2, [{c2} + {crow}*1]",
                "tileloadd tmm3, [{c3} + {crow}*1]",
                c = in(reg) c,
                c1 = in(reg) c1,
                c2 = in(reg) c2,
                c3 = in(reg) c3,
                crow = in(reg) crow,
                options(nostack, readonly),
            );
        } else {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem),
            );
        }
    }
    // SAFETY: each pointer walks `ksteps` blocks of its strip; the stores
    // fill the 32 x 32 block at c. The tile registers keep their values
    // between the asm blocks (the compiler never allocates them).
    unsafe {
        asm!(
            "2:",
            "tileloadd tmm4, [{a0} + {row}*1]",
            "tileloadd tmm6, [{b0} + {row}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tileloadd tmm7, [{b1} + {row}*1]",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tileloadd tmm5, [{a1} + {row}*1]",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a0}, {step}",
            "add {a1}, {step}",
            "add {b0}, {step}",
            "add {b1}, {step}",
            "dec {n}",
            "jnz 2b",
            "tilestored [{c} + {crow}*1], tmm0",
            "tilestored [{c1} + {crow}*1], tmm1",
            "tilestored [{c2} + {crow}*1], tmm2",
            "tilestored [{c3} + {crow}*1], tmm3",
            a0 = inout(reg) a0 => _,
            a1 = inout(reg) a1 => _,
            b0 = inout(reg) b0 => _,
            b1 = inout(reg) b1 => _,
            n = inout(reg) steps.len() => _,
            row = in(reg) 64usize,
            step = in(reg) step,
            c = in(reg) c,
            c1 = in(reg) c1,
            c2 = in(reg) c2,
            c3 = in(reg) c3,
            crow = in(reg) crow,
            options(nostack),
        );
    }
}

/// Left strips `lrange` times right strips `rrange` (both even-sized
/// pairs of strips), written to `out`: straight into the output where a
/// whole 32 x 32 block lies in rows of contiguous f32, through a buffer
/// otherwise.
///
/// # Safety
/// AMX must be available, `packed.ksteps` above zero, and the ranges
/// this job's.
pub(crate) unsafe fn job(packed: &Packed, lrange: Range<usize>, rrange: Range<usize>, out: Out) {
    let direct = out.cs == 1 && out.rs > 0;
    let (i0, j0) = (lrange.start * STRIP, rrange.start * STRIP);
    let width = rrange.len() * STRIP;
    let mut scratch: Vec<f32> = Vec::new();
    // Each 32 x 32 block's destination: the output, or the scratch buffer
    // (row stride `width`), and whether it is the output.
    let blocks: Vec<((usize, usize), bool)> = lrange
        .clone()
        .step_by(2)
        .flat_map(|s| rrange.clone().step_by(2).map(move |t| (s, t)))
        .map(|(s, t)| {
            let inside = s * STRIP + 32 <= out.rows && t * STRIP + 32 <= out.cols;
            ((s, t), direct && inside)
        })
        .collect();
    if blocks.iter().any(|&(_, d)| !d) {
        scratch = vec![0.0; lrange.len() * STRIP * width];
    }
    let target = |(s, t): (usize, usize), d: bool| -> (*mut f32, usize) {
        if d {
            let at = (s * STRIP) as isize * out.rs + (t * STRIP) as isize;
            (out.ptr.at(0).wrapping_offset(at), out.rs as usize * 4)
        } else {
            let at = (s * STRIP - i0) * width + (t * STRIP - j0);
            (scratch.as_ptr().wrapping_add(at).cast_mut(), width * 4)
        }
    };
    // SAFETY: the configuration is valid for palette 1; the tiles are
    // released before the job returns.
    unsafe { asm!("ldtilecfg [{0}]", in(reg) CONFIG.0.as_ptr(), options(nostack)) };
    // Left strips outer: a left pair's panel stays in L2 while the right
    // pairs of the job pass (blocking k for L1 measured slower: the output
    // blocks' loads and stores cost more than the reuse saved).
    for &((s, t), d) in &blocks {
        // SAFETY: configured above; strips exist (padded pairs); the block
        // lies inside the output part of this job, or inside the scratch
        // buffer.
        unsafe {
            tiles(
                packed,
                (s, t),
                0..packed.ksteps,
                target((s, t), d),
                d && out.accumulate,
            )
        };
    }
    // SAFETY: returns the tile state to its initial configuration.
    unsafe { asm!("tilerelease", options(nostack)) };
    if !scratch.is_empty() {
        for &((s, t), d) in &blocks {
            if !d {
                let at = (s * STRIP - i0) * width + (t * STRIP - j0);
                // SAFETY: this job's block of the output.
                unsafe { out.write(&scratch[at..], width, (s * STRIP, t * STRIP), (32, 32)) };
            }
        }
    }
}
