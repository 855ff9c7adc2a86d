//! `throughput.png`: NOPs per second against NOPs per enter, one line per
//! configuration, both axes logarithmic.

use std::{fs, path::Path, sync::OnceLock};

use anyhow::{Context as _, anyhow};
use plotters::{
    prelude::*,
    style::{FontStyle, register_font},
};

use super::{
    analysis::Results,
    configs::{BATCHES, Config},
    tools::PLOT_FONT,
};

const SIZE: (u32, u32) = (1000, 640);

/// One colour per configuration, in `Config::ALL` order.
const COLOURS: [RGBColor; 9] = [
    RGBColor(0, 0, 0),
    RGBColor(150, 150, 150),
    RGBColor(90, 90, 90),
    RGBColor(140, 86, 75),
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// plotters draws text with fonts registered by name; registration takes
/// the font's bytes for the life of the program.
fn register_plot_font() -> anyhow::Result<()> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let bytes = fs::read(PLOT_FONT).map_err(|e| format!("reading {PLOT_FONT}: {e}"))?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{PLOT_FONT} is not a font plotters can read"))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

pub fn throughput(results: &Results, path: &Path) -> anyhow::Result<()> {
    register_plot_font()?;
    let series: Vec<(Config, Vec<(f64, f64)>)> = Config::ALL
        .into_iter()
        .map(|c| {
            let thr = results.throughput(c);
            let points = BATCHES
                .iter()
                .filter_map(|b| Some((f64::from(*b), thr[b]?)))
                .collect();
            (c, points)
        })
        .collect();
    let values = series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y));
    let (lo, hi) = values.fold((f64::MAX, 0.0_f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if hi <= 0.0 {
        anyhow::bail!("no throughput to plot");
    }
    draw(&series, lo / 2.0, hi * 2.0, path)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("drawing {}", path.display()))
}

fn draw(
    series: &[(Config, Vec<(f64, f64)>)],
    y_lo: f64,
    y_hi: f64,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "io_uring NOP storm under each tracer (engine on CPU 0, tracer on CPU 1)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            // The batch sizes measured are the x axis's only labels.
            // Room on the right for the legend, clear of the lines.
            (0.8f64..90.0f64)
                .log_scale()
                .with_key_points(BATCHES.iter().map(|&b| f64::from(b)).collect()),
            (y_lo..y_hi).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("NOPs per io_uring_enter")
        .y_desc("NOPs per second")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if *y >= 1e6 {
                format!("{:.1}M", y / 1e6)
            } else if *y >= 1e3 {
                format!("{:.0}K", y / 1e3)
            } else {
                format!("{y:.0}")
            }
        })
        .label_style(("sans-serif", 15))
        .draw()?;
    for (i, (config, points)) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(config.label())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    root.present()?;
    Ok(())
}
