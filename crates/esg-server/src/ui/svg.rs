//! Geometry of the server-made SVG charts. Only numbers and labels are
//! computed here; the templates write the markup (so every label is
//! escaped like any other value). Each chart is readable without colour:
//! every bar or point carries its stage number, every row its label, and
//! series are told apart by letters, not hues alone.

/// One horizontal bar of the stage chart.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Row label (theme code).
    pub label: String,
    /// Longer label for `<title>`.
    pub title: String,
    /// Stage 0–4.
    pub stage: u8,
    /// Top of the bar.
    pub y: u32,
    /// Width of the bar.
    pub w: u32,
    /// Where the number goes.
    pub text_x: u32,
    /// Baseline of the texts.
    pub text_y: u32,
}

/// Width of the drawing area for stage 4.
pub const PLOT_W: u32 = 240;
/// Left margin (labels).
pub const LEFT: u32 = 56;
/// Height of one bar row.
pub const ROW_H: u32 = 26;

/// Bars for (label, title, stage) rows.
pub fn bars(rows: &[(String, String, u8)]) -> Vec<Bar> {
    rows.iter()
        .enumerate()
        .map(|(i, (label, title, stage))| {
            let w = PLOT_W * u32::from(*stage) / 4;
            Bar {
                label: label.clone(),
                title: title.clone(),
                stage: *stage,
                y: 8 + i as u32 * ROW_H,
                w,
                text_x: LEFT + w + 6,
                text_y: 8 + i as u32 * ROW_H + 15,
            }
        })
        .collect()
}

/// Height of a bar chart with `n` rows (axis labels included).
pub fn bars_height(n: usize) -> u32 {
    16 + n as u32 * ROW_H + 18
}

/// Grid lines at stages 0–4: (x, label).
pub fn grid() -> Vec<(u32, u8)> {
    (0..=4u8)
        .map(|s| (LEFT + PLOT_W * u32::from(s) / 4, s))
        .collect()
}

/// One bar of a grouped chart (compare): a company's stage on a theme.
#[derive(Debug, Clone)]
pub struct GroupBar {
    /// x of the bar.
    pub x: u32,
    /// Top of the bar.
    pub y: u32,
    /// Height.
    pub h: u32,
    /// Series letter (A, B, ...).
    pub letter: char,
    /// Series index (CSS class `series-N`).
    pub series: usize,
    /// Stage.
    pub stage: u8,
    /// `<title>`: company, theme, stage.
    pub title: String,
}

/// A theme group of the grouped chart.
#[derive(Debug, Clone)]
pub struct Group {
    /// Theme code.
    pub label: String,
    /// Centre of the group (label x).
    pub cx: u32,
    /// Its bars.
    pub bars: Vec<GroupBar>,
}

/// Height of the plot area of the grouped chart (stage 4).
pub const GROUP_PLOT_H: u32 = 120;
/// Top of the plot area.
pub const GROUP_TOP: u32 = 24;
/// Width of one bar in a group.
pub const GROUP_BAR_W: u32 = 16;

/// Groups for `themes` (code) × `series` (name, stages in theme order).
pub fn groups(themes: &[String], series: &[(String, Vec<u8>)]) -> (Vec<Group>, u32) {
    let n = series.len().max(1) as u32;
    let group_w = n * (GROUP_BAR_W + 2) + 14;
    let left = 30;
    let out = themes
        .iter()
        .enumerate()
        .map(|(ti, code)| {
            let gx = left + ti as u32 * group_w;
            let bars = series
                .iter()
                .enumerate()
                .map(|(si, (name, stages))| {
                    let stage = stages.get(ti).copied().unwrap_or(0);
                    let h = GROUP_PLOT_H * u32::from(stage) / 4;
                    GroupBar {
                        x: gx + si as u32 * (GROUP_BAR_W + 2),
                        y: GROUP_TOP + GROUP_PLOT_H - h,
                        h,
                        letter: letter(si),
                        series: si,
                        stage,
                        title: format!("{name}: {code} stage {stage}"),
                    }
                })
                .collect();
            Group {
                label: code.clone(),
                cx: gx + (n * (GROUP_BAR_W + 2)) / 2,
                bars,
            }
        })
        .collect();
    (out, left + themes.len() as u32 * group_w + 10)
}

/// Series letter `i` (A–Z).
pub fn letter(i: usize) -> char {
    char::from(b'A' + (i % 26) as u8)
}

/// One point of a small per-theme chart over years.
#[derive(Debug, Clone)]
pub struct Point {
    /// x.
    pub x: u32,
    /// y.
    pub y: u32,
    /// Year.
    pub year: i32,
    /// Stage.
    pub stage: u8,
}

/// Points (and the polyline's `points` attribute) for stages over years,
/// in a `w`×40 box.
pub fn spark(stages: &[(i32, u8)], w: u32) -> (Vec<Point>, String) {
    let n = stages.len().max(2) as u32;
    let step = (w - 24) / (n - 1);
    let pts: Vec<Point> = stages
        .iter()
        .enumerate()
        .map(|(i, (year, s))| Point {
            x: 12 + i as u32 * step,
            y: 34 - u32::from(*s) * 6,
            year: *year,
            stage: *s,
        })
        .collect();
    let line = pts
        .iter()
        .map(|p| format!("{},{}", p.x, p.y))
        .collect::<Vec<_>>()
        .join(" ");
    (pts, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_geometry() {
        let b = bars(&[
            ("TSP".into(), "Transition".into(), 4),
            ("GHG".into(), "GHG".into(), 0),
        ]);
        assert_eq!(
            (b[0].w, b[0].y, b[0].text_x),
            (PLOT_W, 8, LEFT + PLOT_W + 6)
        );
        assert_eq!((b[1].w, b[1].y), (0, 8 + ROW_H));
        assert_eq!(grid().len(), 5);
    }

    #[test]
    fn groups_and_sparks() {
        let (g, w) = groups(
            &["TSP".into(), "GHG".into()],
            &[("A co".into(), vec![4, 2]), ("B co".into(), vec![0, 1])],
        );
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].bars[0].h, GROUP_PLOT_H);
        assert_eq!(g[0].bars[1].h, 0);
        assert_eq!(g[1].bars[1].letter, 'B');
        assert_eq!(g[1].bars[0].title, "A co: GHG stage 2");
        assert!(w > g[1].bars[1].x);
        let (p, line) = spark(&[(2022, 1), (2023, 3)], 120);
        assert_eq!(p.len(), 2);
        assert_eq!(line, "12,28 108,16");
    }
}
