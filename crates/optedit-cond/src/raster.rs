//! The few OpenCV drawing primitives the OpenPose annotator uses, ported from
//! OpenCV's `imgproc/src/drawing.cpp` so that skeletons match it to the pixel:
//! `ellipse2Poly` (sine table and round-half-even included), `fillConvexPoly`
//! (16.16 fixed-point scanline walk plus the 8-connected outline),
//! `circle` with `thickness = -1` (midpoint circle, filled spans) and the
//! 8-connected Bresenham `LineIterator` with OpenCV's `clipLine`.
//!
//! All of it is integer or IEEE-double arithmetic evaluated in OpenCV's order,
//! so the results are deterministic and platform independent. Only 8-bit
//! 3-channel canvases, `LINE_8` and `shift = 0` are covered: what
//! `controlnet_aux` calls.

use std::sync::OnceLock;

/// Fixed-point shift of OpenCV's polygon filler.
const XY_SHIFT: i64 = 16;
const XY_ONE: i64 = 1 << XY_SHIFT;

/// A row-major RGB canvas (3 bytes a pixel) being drawn on.
pub(crate) struct Canvas<'a> {
    data: &'a mut [u8],
    width: i64,
    height: i64,
}

impl<'a> Canvas<'a> {
    /// Wraps `data`, which must hold `width * height * 3` bytes.
    pub(crate) fn new(data: &'a mut [u8], width: u32, height: u32) -> Self {
        debug_assert_eq!(data.len(), width as usize * height as usize * 3);
        Self {
            data,
            width: i64::from(width),
            height: i64::from(height),
        }
    }

    fn put(&mut self, x: i64, y: i64, color: [u8; 3]) {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            let i = ((y * self.width + x) * 3) as usize;
            self.data[i..i + 3].copy_from_slice(&color);
        }
    }

    /// Fills `xl..=xr` of row `y`, clipped to the canvas (OpenCV clips before
    /// calling its `ICV_HLINE`; clipping here gives the same pixels).
    fn hline(&mut self, y: i64, xl: i64, xr: i64, color: [u8; 3]) {
        if !(0..self.height).contains(&y) {
            return;
        }
        let (xl, xr) = (xl.max(0), xr.min(self.width - 1));
        for x in xl..=xr {
            self.put(x, y, color);
        }
    }
}

/// OpenCV's `SinTable`: sin(i°) for i in 0..=450, rounded to 7 decimals and
/// stored as `f32`. (Every entry is at least 0.002 units of the 7th decimal
/// away from a rounding tie, so computing it reproduces the literal table.)
fn sin_table() -> &'static [f32; 451] {
    static TABLE: OnceLock<[f32; 451]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [0f32; 451];
        for (i, slot) in table.iter_mut().enumerate() {
            let scaled = ((i as f64).to_radians().sin() * 1e7).round() as i64;
            *slot = format!("{scaled}e-7").parse().expect("a decimal literal");
        }
        table
    })
}

/// `cv::ellipse2Poly` with integer centre and axes: the polygon approximating
/// the elliptic arc `arc_start..arc_end` (degrees) rotated by `angle`, one
/// vertex every `delta` degrees, rounded half-to-even (`cvRound`) and with
/// consecutive duplicates removed.
pub(crate) fn ellipse_to_polygon(
    center: (i32, i32),
    axes: (i32, i32),
    mut angle: i32,
    mut arc_start: i32,
    mut arc_end: i32,
    delta: i32,
) -> Vec<(i32, i32)> {
    debug_assert!(0 < delta && delta <= 180);
    let table = sin_table();
    while angle < 0 {
        angle += 360;
    }
    while angle > 360 {
        angle -= 360;
    }
    if arc_start > arc_end {
        std::mem::swap(&mut arc_start, &mut arc_end);
    }
    while arc_start < 0 {
        arc_start += 360;
        arc_end += 360;
    }
    while arc_end > 360 {
        arc_end -= 360;
        arc_start -= 360;
    }
    if arc_end - arc_start > 360 {
        arc_start = 0;
        arc_end = 360;
    }
    // sincos(): angle is already in 0..=360.
    let beta = f64::from(table[angle as usize]);
    let alpha = f64::from(table[(450 - angle) as usize]);
    let (cx, cy) = (f64::from(center.0), f64::from(center.1));
    let (aw, ah) = (f64::from(axes.0), f64::from(axes.1));

    let mut points: Vec<(i32, i32)> = Vec::new();
    let mut i = arc_start;
    while i < arc_end + delta {
        let mut a = i.min(arc_end);
        if a < 0 {
            a += 360;
        }
        let x = aw * f64::from(table[(450 - a) as usize]);
        let y = ah * f64::from(table[a as usize]);
        let px = cx + x * alpha - y * beta;
        let py = cy + x * beta + y * alpha;
        let p = (px.round_ties_even() as i32, py.round_ties_even() as i32);
        if points.last() != Some(&p) {
            points.push(p);
        }
        i += delta;
    }
    if points.len() == 1 {
        points = vec![center, center];
    }
    points
}

/// OpenCV's `clipLine` on a `width x height` rectangle (Cohen–Sutherland with
/// its double-precision intercepts truncated toward zero). Returns whether
/// any part of the segment is inside.
fn clip_line(width: i64, height: i64, p1: &mut (i64, i64), p2: &mut (i64, i64)) -> bool {
    if width <= 0 || height <= 0 {
        return false;
    }
    let (right, bottom) = (width - 1, height - 1);
    let code = |x: i64, y: i64| {
        i32::from(x < 0)
            + i32::from(x > right) * 2
            + i32::from(y < 0) * 4
            + i32::from(y > bottom) * 8
    };
    let (x1, y1) = (&mut p1.0, &mut p1.1);
    let (x2, y2) = (&mut p2.0, &mut p2.1);
    let mut c1 = code(*x1, *y1);
    let mut c2 = code(*x2, *y2);
    let intercept =
        |a: i64, b: i64, num: i64, den: i64| ((a - b) as f64 * num as f64 / den as f64) as i64;
    if (c1 & c2) == 0 && (c1 | c2) != 0 {
        if c1 & 12 != 0 {
            let a = if c1 < 8 { 0 } else { bottom };
            *x1 += intercept(a, *y1, *x2 - *x1, *y2 - *y1);
            *y1 = a;
            c1 = i32::from(*x1 < 0) + i32::from(*x1 > right) * 2;
        }
        if c2 & 12 != 0 {
            let a = if c2 < 8 { 0 } else { bottom };
            *x2 += intercept(a, *y2, *x2 - *x1, *y2 - *y1);
            *y2 = a;
            c2 = i32::from(*x2 < 0) + i32::from(*x2 > right) * 2;
        }
        if (c1 & c2) == 0 && (c1 | c2) != 0 {
            if c1 != 0 {
                let a = if c1 == 1 { 0 } else { right };
                *y1 += intercept(a, *x1, *y2 - *y1, *x2 - *x1);
                *x1 = a;
                c1 = 0;
            }
            if c2 != 0 {
                let a = if c2 == 1 { 0 } else { right };
                *y2 += intercept(a, *x2, *y2 - *y1, *x2 - *x1);
                *x2 = a;
                c2 = 0;
            }
        }
    }
    (c1 | c2) == 0
}

/// `cv::line` with thickness 1 and `LINE_8`: OpenCV's `LineIterator`
/// (8-connected Bresenham, drawn left to right) after clipping.
pub(crate) fn line8(canvas: &mut Canvas<'_>, p1: (i64, i64), p2: (i64, i64), color: [u8; 3]) {
    let (mut a, mut b) = (p1, p2);
    let outside =
        |p: (i64, i64)| !(0..canvas.width).contains(&p.0) || !(0..canvas.height).contains(&p.1);
    if (outside(a) || outside(b)) && !clip_line(canvas.width, canvas.height, &mut a, &mut b) {
        return;
    }
    let (mut dx, mut dy) = (b.0 - a.0, b.1 - a.1);
    let (mut delta_x, mut delta_y) = (1i64, 1i64);
    let mut start = a;
    if dx < 0 {
        dx = -dx;
        dy = -dy;
        start = b;
    }
    if dy < 0 {
        dy = -dy;
        delta_y = -1;
    }
    let vertical = dy > dx;
    if vertical {
        std::mem::swap(&mut dx, &mut dy);
        std::mem::swap(&mut delta_x, &mut delta_y);
    }
    // (row, column) moves on every step ("minus") and on error wrap ("plus").
    let (minus, plus) = if vertical {
        ((delta_x, 0), (0, delta_y))
    } else {
        ((0, delta_x), (delta_y, 0))
    };
    let mut err = dx - 2 * dy;
    let (plus_delta, minus_delta) = (2 * dx, -2 * dy);
    let (mut x, mut y) = start;
    for _ in 0..=dx {
        canvas.put(x, y, color);
        let wrap = err < 0;
        err += minus_delta + if wrap { plus_delta } else { 0 };
        y += minus.0 + if wrap { plus.0 } else { 0 };
        x += minus.1 + if wrap { plus.1 } else { 0 };
    }
}

/// `cv::fillConvexPoly` with `LINE_8` and `shift = 0`: the outline drawn with
/// [`line8`], then spans between a left and a right edge walker in 16.16
/// fixed point, exactly as OpenCV's `FillConvexPoly`.
pub(crate) fn fill_convex_poly(canvas: &mut Canvas<'_>, v: &[(i32, i32)], color: [u8; 3]) {
    let npts = v.len();
    if npts == 0 {
        return;
    }
    let v: Vec<(i64, i64)> = v
        .iter()
        .map(|&(x, y)| (i64::from(x), i64::from(y)))
        .collect();
    let half = XY_ONE >> 1;

    let (mut xmin, mut xmax, mut ymin, mut ymax) = (v[0].0, v[0].0, v[0].1, v[0].1);
    let mut imin = 0usize;
    let mut p0 = v[npts - 1];
    for (i, &p) in v.iter().enumerate() {
        if p.1 < ymin {
            ymin = p.1;
            imin = i;
        }
        ymax = ymax.max(p.1);
        xmax = xmax.max(p.0);
        xmin = xmin.min(p.0);
        line8(canvas, p0, p, color);
        p0 = p;
    }
    if npts < 3 || xmax < 0 || ymax < 0 || xmin >= canvas.width || ymin >= canvas.height {
        return;
    }
    let ymax = ymax.min(canvas.height - 1);

    #[derive(Clone, Copy)]
    struct Edge {
        idx: usize,
        di: usize,
        x: i64,
        dx: i64,
        ye: i64,
    }
    let mut edge = [
        Edge {
            idx: imin,
            di: 1,
            x: -XY_ONE,
            dx: 0,
            ye: ymin,
        },
        Edge {
            idx: imin,
            di: npts - 1,
            x: -XY_ONE,
            dx: 0,
            ye: ymin,
        },
    ];
    let mut edges = npts as i64;
    let mut y = ymin;
    loop {
        for e in edge.iter_mut() {
            if y < e.ye {
                continue;
            }
            let mut idx0 = e.idx;
            let mut idx = (idx0 + e.di) % npts;
            loop {
                // C's `edges-- > 0`: test, then decrement either way.
                let more = edges > 0;
                edges -= 1;
                if !more {
                    break;
                }
                let ty = v[idx].1;
                if ty > y {
                    let (xs, xe) = (v[idx0].0 << XY_SHIFT, v[idx].0 << XY_SHIFT);
                    e.ye = ty;
                    e.dx = ((xe - xs) * 2 + (ty - y)) / (2 * (ty - y));
                    e.x = xs;
                    e.idx = idx;
                    break;
                }
                idx0 = idx;
                idx = (idx + e.di) % npts;
            }
        }
        if edges < 0 {
            break;
        }
        if y >= 0 {
            let (left, right) = if edge[0].x > edge[1].x {
                (1, 0)
            } else {
                (0, 1)
            };
            let xx1 = (edge[left].x + half) >> XY_SHIFT;
            let xx2 = (edge[right].x + half) >> XY_SHIFT;
            if xx2 >= 0 && xx1 < canvas.width {
                canvas.hline(y, xx1, xx2, color);
            }
        }
        edge[0].x += edge[0].dx;
        edge[1].x += edge[1].dx;
        y += 1;
        if y > ymax {
            break;
        }
    }
}

/// `cv::circle` with `thickness = -1` and `LINE_8`: OpenCV's midpoint
/// `Circle` filling four spans per step.
pub(crate) fn fill_circle(
    canvas: &mut Canvas<'_>,
    center: (i64, i64),
    radius: i64,
    color: [u8; 3],
) {
    let (cx, cy) = center;
    let (mut err, mut dx, mut dy, mut plus, mut minus) = (0i64, radius, 0i64, 1i64, 2 * radius - 1);
    while dx >= dy {
        canvas.hline(cy - dy, cx - dx, cx + dx, color);
        canvas.hline(cy + dy, cx - dx, cx + dx, color);
        canvas.hline(cy - dx, cx - dy, cx + dy, color);
        canvas.hline(cy + dx, cx - dy, cx + dy, color);
        dy += 1;
        err += plus;
        plus += 2;
        if err > 0 {
            err -= minus;
            dx -= 1;
            minus -= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(w: u32, h: u32) -> Vec<u8> {
        vec![0; (w * h * 3) as usize]
    }

    fn lit(data: &[u8], w: u32, x: u32, y: u32) -> bool {
        data[((y * w + x) * 3) as usize] != 0
    }

    #[test]
    fn sine_table_matches_opencv_literals() {
        let t = sin_table();
        // Spot values of OpenCV's literal table.
        assert_eq!(t[0], 0.0);
        assert_eq!(t[1], 0.0174524f32);
        assert_eq!(t[13], 0.2249511f32);
        assert_eq!(t[30], 0.5f32);
        assert_eq!(t[86], 0.9975641f32);
        assert_eq!(t[90], 1.0f32);
        assert_eq!(t[181], -0.0174524f32);
        assert_eq!(t[270], -1.0f32);
        assert_eq!(t[450], 1.0f32);
    }

    #[test]
    fn ellipse_polygon_of_axis_aligned_ellipse() {
        let p = ellipse_to_polygon((10, 20), (5, 2), 0, 0, 360, 1);
        assert_eq!(p.first(), Some(&(15, 20)));
        assert_eq!(p.last(), Some(&(15, 20)));
        assert!(p.contains(&(10, 22)) && p.contains(&(5, 20)) && p.contains(&(10, 18)));
        // A zero-size ellipse collapses to its centre, twice.
        assert_eq!(
            ellipse_to_polygon((3, 4), (0, 0), 0, 0, 360, 1),
            vec![(3, 4), (3, 4)]
        );
    }

    #[test]
    fn line_is_eight_connected_and_symmetric() {
        let (w, h) = (20, 20);
        let mut a = blank(w, h);
        let mut b = blank(w, h);
        line8(&mut Canvas::new(&mut a, w, h), (1, 2), (17, 9), [255; 3]);
        line8(&mut Canvas::new(&mut b, w, h), (17, 9), (1, 2), [255; 3]);
        assert_eq!(a, b, "drawn left to right whatever the order");
        let count = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| lit(&a, w, x, y))
            .count();
        assert_eq!(count, 17, "one pixel per column");
    }

    #[test]
    fn clipped_line_stays_on_canvas() {
        let (w, h) = (8, 8);
        let mut a = blank(w, h);
        line8(
            &mut Canvas::new(&mut a, w, h),
            (-20, -3),
            (30, 12),
            [255; 3],
        );
        assert!(a.iter().any(|&v| v != 0));
        line8(&mut Canvas::new(&mut a, w, h), (-20, -3), (-1, -9), [7; 3]);
        assert!(!a.contains(&7));
    }

    #[test]
    fn filled_circle_of_radius_4_is_opencvs_disc() {
        let (w, h) = (11, 11);
        let mut a = blank(w, h);
        fill_circle(&mut Canvas::new(&mut a, w, h), (5, 5), 4, [255; 3]);
        let rows: Vec<String> = (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| if lit(&a, w, x, y) { '#' } else { '.' })
                    .collect()
            })
            .collect();
        let want = [
            "...........",
            ".....#.....",
            "...#####...",
            "..#######..",
            "..#######..",
            ".#########.",
            "..#######..",
            "..#######..",
            "...#####...",
            ".....#.....",
            "...........",
        ];
        assert_eq!(rows, want);
    }

    #[test]
    fn circle_at_corner_is_clipped() {
        let (w, h) = (4, 4);
        let mut a = blank(w, h);
        fill_circle(&mut Canvas::new(&mut a, w, h), (0, 0), 4, [9; 3]);
        assert!(lit(&a, w, 0, 0) && lit(&a, w, 3, 0) && lit(&a, w, 0, 3));
    }

    #[test]
    fn convex_fill_covers_rectangle_exactly() {
        let (w, h) = (10, 10);
        let mut a = blank(w, h);
        fill_convex_poly(
            &mut Canvas::new(&mut a, w, h),
            &[(2, 3), (6, 3), (6, 7), (2, 7)],
            [255; 3],
        );
        for y in 0..h {
            for x in 0..w {
                let inside = (2..=6).contains(&x) && (3..=7).contains(&y);
                assert_eq!(lit(&a, w, x, y), inside, "pixel ({x}, {y})");
            }
        }
    }
}
