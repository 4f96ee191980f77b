//! Page layout: a top-to-bottom flow of blocks over A4 pages, tables that repeat their
//! header row on every page, the bar chart, and the footers.

use printpdf::{BuiltinFont, Color, Op, PaintMode, PdfFontHandle, Point, Pt, Rect, Rgb, TextItem};

use super::text::{fit, width};

pub(crate) const PAGE_W: f32 = 595.28;
pub(crate) const PAGE_H: f32 = 841.89;
const LEFT: f32 = 42.0;
const RIGHT: f32 = PAGE_W - 42.0;
const TOP: f32 = PAGE_H - 42.0;
const BOTTOM: f32 = 46.0;
const ROW: f32 = 13.0;
const CELL_PAD: f32 = 4.0;
const BODY: f32 = 8.5;

pub(crate) const BLACK: [f32; 3] = [0.0, 0.0, 0.0];
const GREY: [f32; 3] = [0.4, 0.4, 0.4];
const WHITE: [f32; 3] = [1.0, 1.0, 1.0];
const HEADER_BG: [f32; 3] = [0.20, 0.30, 0.43];
const ZEBRA: [f32; 3] = [0.93, 0.95, 0.97];
const BAR: [f32; 3] = [0.25, 0.47, 0.71];

/// Horizontal alignment of a table column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// One page's drawing: shapes first, then one text section on top.
#[derive(Debug, Default)]
struct Page {
    shapes: Vec<Op>,
    text: Vec<Op>,
    font: Option<(bool, f32)>,
    color: Option<[f32; 3]>,
    shape_color: Option<[f32; 3]>,
    /// The text line start inside the page's text section: `Td` moves are relative to it.
    cursor: (f32, f32),
}

fn rgb(c: [f32; 3]) -> Color {
    Color::Rgb(Rgb {
        r: c[0],
        g: c[1],
        b: c[2],
        icc_profile: None,
    })
}

impl Page {
    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: [f32; 3]) {
        if self.shape_color != Some(color) {
            self.shapes.push(Op::SetFillColor { col: rgb(color) });
            self.shape_color = Some(color);
        }
        self.shapes.push(Op::DrawRectangle {
            rectangle: Rect {
                x: Pt(x),
                y: Pt(y),
                width: Pt(w),
                height: Pt(h),
                mode: Some(PaintMode::Fill),
                winding_order: None,
            },
        });
    }

    fn text(&mut self, x: f32, y: f32, s: String, bold: bool, size: f32, color: [f32; 3]) {
        if self.font != Some((bold, size)) {
            let font = if bold {
                BuiltinFont::HelveticaBold
            } else {
                BuiltinFont::Helvetica
            };
            self.text.push(Op::SetFont {
                font: PdfFontHandle::Builtin(font),
                size: Pt(size),
            });
            self.font = Some((bold, size));
        }
        if self.color != Some(color) {
            self.text.push(Op::SetFillColor { col: rgb(color) });
            self.color = Some(color);
        }
        // A relative `Td` (two numbers) instead of an absolute `Tm` (six): less to format
        // and to compress. Moves are rounded to 1/100 pt and the cursor tracks the rounded
        // sum, so positions never drift.
        let dx = ((x - self.cursor.0) * 100.0).round() / 100.0;
        let dy = ((y - self.cursor.1) * 100.0).round() / 100.0;
        self.cursor = (self.cursor.0 + dx, self.cursor.1 + dy);
        self.text.push(Op::SetTextCursor {
            pos: Point {
                x: Pt(dx),
                y: Pt(dy),
            },
        });
        self.text.push(Op::ShowText {
            items: vec![TextItem::Text(s)],
        });
    }

    fn into_ops(self) -> Vec<Op> {
        let mut ops = self.shapes;
        ops.reserve(self.text.len() + 2);
        ops.push(Op::StartTextSection);
        ops.extend(self.text);
        ops.push(Op::EndTextSection);
        ops
    }
}

/// A column of a laid-out table: where it is and how it aligns.
#[derive(Debug, Clone)]
pub(crate) struct ColumnSpec {
    pub(crate) name: String,
    pub(crate) align: Align,
    pub(crate) weight: f32,
}

/// The flow: the current page, the pen's height, and the finished pages.
#[derive(Debug)]
pub(crate) struct Flow {
    done: Vec<Page>,
    page: Page,
    y: f32,
}

impl Flow {
    pub(crate) fn new() -> Self {
        Self {
            done: Vec::new(),
            page: Page::default(),
            y: TOP,
        }
    }

    fn new_page(&mut self) {
        let full = std::mem::take(&mut self.page);
        self.done.push(full);
        self.y = TOP;
    }

    /// Starts a new page unless `h` points still fit on this one.
    fn need(&mut self, h: f32) {
        if self.y - h < BOTTOM {
            self.new_page();
        }
    }

    pub(crate) fn title(&mut self, title: &str, subtitle: &str) {
        self.page.text(
            LEFT,
            self.y - 18.0,
            fit(title, 18.0, true, RIGHT - LEFT),
            true,
            18.0,
            BLACK,
        );
        self.page
            .text(LEFT, self.y - 34.0, subtitle.to_owned(), false, 9.0, GREY);
        self.y -= 50.0;
    }

    pub(crate) fn heading(&mut self, s: &str) {
        self.page.text(
            LEFT,
            self.y - 12.0,
            fit(s, 12.0, true, RIGHT - LEFT),
            true,
            12.0,
            BLACK,
        );
        self.y -= 20.0;
    }

    /// Label/value pairs in two columns.
    pub(crate) fn summary(&mut self, items: &[(&str, String)]) {
        let rows = items.len().div_ceil(2);
        self.need(20.0 + rows as f32 * 15.0 + 12.0);
        self.heading("Summary");
        let half = (RIGHT - LEFT) / 2.0;
        for (i, (label, value)) in items.iter().enumerate() {
            let x = LEFT + if i % 2 == 0 { 0.0 } else { half };
            let y = self.y - 11.0 - (i / 2) as f32 * 15.0;
            self.page.text(x, y, (*label).to_owned(), false, 9.0, GREY);
            self.page.text(
                x + 90.0,
                y,
                fit(value, 9.0, true, half - 96.0),
                true,
                9.0,
                BLACK,
            );
        }
        self.y -= rows as f32 * 15.0 + 14.0;
    }

    /// Horizontal bars, one per `(label, value, value text)`, scaled to the largest value.
    pub(crate) fn bar_chart(&mut self, title: &str, bars: &[(String, i64, String)]) {
        const BAR_H: f32 = 11.0;
        const STEP: f32 = 16.0;
        self.need(20.0 + bars.len().max(1) as f32 * STEP + 12.0);
        self.heading(title);
        let label_w = 130.0;
        let x0 = LEFT + label_w + 6.0;
        let span = RIGHT - 90.0 - x0;
        let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
        for (i, (label, value, text)) in bars.iter().enumerate() {
            let top = self.y - i as f32 * STEP;
            let label = fit(label, 9.0, false, label_w);
            let lw = width(&label, 9.0, false);
            self.page
                .text(x0 - 6.0 - lw, top - 9.0, label, false, 9.0, BLACK);
            let w = if *value > 0 {
                (*value as f64 / max * f64::from(span)) as f32
            } else {
                0.0
            };
            self.page.rect(x0, top - BAR_H, w.max(0.5), BAR_H, BAR);
            self.page
                .text(x0 + w + 4.0, top - 9.0, text.clone(), false, 8.0, GREY);
        }
        let h = bars.len() as f32 * STEP;
        self.page.rect(x0 - 0.5, self.y - h + 2.0, 0.8, h, GREY);
        self.y -= h + 14.0;
    }

    fn header_row(&mut self, cols: &[(ColumnSpec, f32, f32)]) {
        self.page
            .rect(LEFT, self.y - ROW, RIGHT - LEFT, ROW, HEADER_BG);
        for (c, x, w) in cols {
            self.cell(&c.name, c.align, *x, *w, true, WHITE);
        }
        self.y -= ROW;
    }

    fn cell(&mut self, s: &str, align: Align, x: f32, w: f32, bold: bool, color: [f32; 3]) {
        let s = fit(s, BODY, bold, w - 2.0 * CELL_PAD);
        let tx = match align {
            Align::Left => x + CELL_PAD,
            Align::Right => x + w - CELL_PAD - width(&s, BODY, bold),
        };
        self.page.text(tx, self.y - ROW + 3.8, s, bold, BODY, color);
    }

    /// A table whose header row is repeated on every page it spans.
    pub(crate) fn table<I>(&mut self, title: &str, columns: &[ColumnSpec], rows: I)
    where
        I: IntoIterator<Item = Vec<String>>,
    {
        let total: f32 = columns.iter().map(|c| c.weight.max(0.01)).sum();
        let mut x = LEFT;
        let cols: Vec<(ColumnSpec, f32, f32)> = columns
            .iter()
            .map(|c| {
                let w = (RIGHT - LEFT) * c.weight.max(0.01) / total;
                let placed = (c.clone(), x, w);
                x += w;
                placed
            })
            .collect();
        // Keep the heading with the header row and a few data rows.
        self.need(20.0 + 4.0 * ROW);
        self.heading(title);
        self.header_row(&cols);
        for (i, row) in rows.into_iter().enumerate() {
            if self.y - ROW < BOTTOM {
                self.new_page();
                self.heading(&format!("{title} (continued)"));
                self.header_row(&cols);
            }
            if i % 2 == 1 {
                self.page.rect(LEFT, self.y - ROW, RIGHT - LEFT, ROW, ZEBRA);
            }
            for ((c, x, w), s) in cols.iter().zip(row.iter()) {
                self.cell(s, c.align, *x, *w, false, BLACK);
            }
            self.y -= ROW;
        }
        self.y -= 14.0;
    }

    /// Finishes the flow: every page's operations, with "Page i of n" footers.
    pub(crate) fn finish(mut self) -> Vec<Vec<Op>> {
        let last = std::mem::take(&mut self.page);
        self.done.push(last);
        let n = self.done.len();
        self.done
            .into_iter()
            .enumerate()
            .map(|(i, mut page)| {
                let footer = format!("Page {} of {n}", i + 1);
                let x = (PAGE_W - width(&footer, 8.0, false)) / 2.0;
                page.text(x, 24.0, footer, false, 8.0, GREY);
                page.into_ops()
            })
            .collect()
    }
}
