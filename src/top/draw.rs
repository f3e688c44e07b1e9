//! One frame: a title line (views, sort, window), the table, the ledger and
//! the keys. Fixed columns for the numbers, the name takes what is left, so
//! that 80 columns fit and a narrower terminal truncates names, not counts.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row as TableRow, Table as TableWidget};
use ratatui::Frame;

use super::tally::{Row, Sort, Table, Tally};
use crate::stats::Snapshot;

/// What the frame shows besides the tallies.
pub struct Frame_<'a> {
    pub table: Table,
    pub sort: Sort,
    /// Seconds the window spans so far (less than the window at start).
    pub span: f64,
    pub uptime: u64,
    /// Counts are packets of aggregated flow records (-u), not records.
    pub packets: bool,
    pub ledger: &'a Snapshot,
}

pub fn draw(frame: &mut Frame<'_>, tally: &Tally, f: &Frame_<'_>) {
    let [title, body, ledger, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(title_line(tally, f)), title);
    table(frame, body, tally, f);
    frame.render_widget(Paragraph::new(ledger_line(f.ledger)), ledger);
    let rows = tally.rows(f.table, f.sort).len();
    let shown = rows.min(usize::from(body.height.saturating_sub(1)));
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" v", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(" view  "),
            Span::styled("s", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(" sort  "),
            Span::styled("q", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!(" quit   {shown} of {rows} {}", f.table.name())),
        ])),
        keys,
    );
}

fn title_line(tally: &Tally, f: &Frame_<'_>) -> Line<'static> {
    let mut spans = vec![Span::styled("trapstream top ", Style::new().add_modifier(Modifier::BOLD))];
    for t in Table::ALL {
        let style = if t == f.table { Style::new().add_modifier(Modifier::REVERSED) } else { Style::new() };
        spans.push(Span::raw(" "));
        spans.push(Span::styled(t.name(), style));
    }
    let up = f.uptime;
    spans.push(Span::raw(format!(
        "  sort {}  window {}s{}  up {}:{:02}:{:02}",
        f.sort.name(),
        tally.window_seconds(),
        if f.packets { " (packets)" } else { "" },
        up / 3600,
        up / 60 % 60,
        up % 60
    )));
    Line::from(spans)
}

fn table(frame: &mut Frame<'_>, area: Rect, tally: &Tally, f: &Frame_<'_>) {
    let reasons = f.table == Table::Reasons;
    let mut header = vec![Cell::from(f.table.name().to_uppercase())];
    let mut widths = vec![Constraint::Fill(1)];
    if reasons {
        header.push(Cell::from("SOURCE"));
        widths.push(Constraint::Length(9));
    }
    header.push(Cell::from(Line::from("RATE/s").right_aligned()));
    header.push(Cell::from(Line::from("TOTAL").right_aligned()));
    widths.extend([Constraint::Length(10), Constraint::Length(12)]);
    let visible = usize::from(area.height.saturating_sub(1));
    let rows = tally.rows(f.table, f.sort).into_iter().take(visible).map(|row: &Row| {
        let mut cells = vec![Cell::from(row.name.to_string())];
        if reasons {
            cells.push(Cell::from(row.source));
        }
        cells.push(Cell::from(Line::from(rate(row.window, f.span)).right_aligned()));
        cells.push(Cell::from(Line::from(row.total.to_string()).right_aligned()));
        TableRow::new(cells)
    });
    let widget = TableWidget::new(rows, widths)
        .header(TableRow::new(header).style(Style::new().add_modifier(Modifier::REVERSED)))
        .column_spacing(1);
    frame.render_widget(widget, area);
}

/// Events a second, with a decimal where it says something.
fn rate(count: u64, span: f64) -> String {
    let r = count as f64 / span.max(1.0);
    if r < 100.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.0}")
    }
}

/// The ledger the final line logs, in a few words: what the kernel saw,
/// what the view counted, what was lost on the way and what filters took.
fn ledger_line(s: &Snapshot) -> Line<'static> {
    let fields = s.fields();
    let get = |name: &str| fields.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| *v);
    let lost = get("lost");
    let mut text = format!(" seen {} shown {} lost {}", get("seen"), get("sent"), lost);
    // Where the losses were, once there are any: 80 columns hold little.
    if lost > 0 {
        let (ring, chan) = (get("ring_lost"), get("channel_lost"));
        text.push_str(&format!(" (ring {ring} chan {chan} other {})", lost.saturating_sub(ring + chan)));
    }
    text.push_str(&format!(" filtered {} limited {}", get("filtered"), get("rate_limited")));
    if s.kernel.aggregated > 0 || s.flushes > 0 {
        text.push_str(&format!(" aggregated {}", get("aggregated")));
    }
    let style = if lost > 0 { Style::new().add_modifier(Modifier::BOLD) } else { Style::new() };
    Line::styled(text, style)
}
