//! `trapstream top`: the capture pipeline's records counted into a live
//! table instead of streamed. The main thread owns the terminal: it drains
//! the channel the poll thread fills, reads keys, and redraws every second.
//!
//! ratatui (over crossterm) draws: it diffs frames, so a redraw over SSH
//! sends only the cells that changed, and it handles resizing and terminal
//! capabilities that hand-written escape codes would get wrong.

mod draw;
mod tally;

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::DefaultTerminal;

use crate::capture::DropReasons;
use crate::error::{Error, Result};
use crate::sender::Item;
use crate::stats::{Snapshot, Stats};

pub use tally::{Sort, Table};

/// How often the table is redrawn when no key asks for it sooner.
const REFRESH: Duration = Duration::from_secs(1);
/// How long to wait for a key before looking at the channel again.
const KEY_WAIT: Duration = Duration::from_millis(50);
/// Records taken from the channel between two looks at the keyboard.
const DRAIN_BATCH: usize = 1 << 16;
/// Log bytes held while the view owns the terminal; past this they are dropped, and counted.
const HELD_LOG_MAX: usize = 1 << 20;

/// Both ends must be a terminal: the table is drawn on standard output and
/// the keys are read from standard input.
pub fn check_terminal() -> Result<()> {
    let which = match (std::io::stdin().is_terminal(), std::io::stdout().is_terminal()) {
        (true, true) => return Ok(()),
        (_, false) => "standard output is not a terminal (to watch drops in a pipe, use --stdout -f text)",
        (false, true) => "standard input is not a terminal (top reads its keys there)",
    };
    Err(Error::Environment(format!("top needs a terminal: {which}")))
}

/// The log while the view owns the terminal: held, and written to stderr
/// once the terminal is restored, so that a warning neither tears the table
/// nor gets lost. Writes straight through when stderr is not the terminal.
#[derive(Clone)]
pub struct HeldLog(Arc<Mutex<Held>>);

struct Held {
    holding: bool,
    bytes: Vec<u8>,
    dropped: usize,
}

impl HeldLog {
    pub fn new() -> HeldLog {
        let holding = std::io::stderr().is_terminal();
        HeldLog(Arc::new(Mutex::new(Held { holding, bytes: Vec::new(), dropped: 0 })))
    }

    /// Write what was held and stop holding.
    pub fn release(&self) {
        let Ok(mut held) = self.0.lock() else { return };
        held.holding = false;
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&held.bytes);
        if held.dropped > 0 {
            let _ =
                writeln!(err, "trapstream: {} bytes of log dropped while the view was open", held.dropped);
        }
        held.bytes = Vec::new();
    }
}

impl Default for HeldLog {
    fn default() -> Self {
        HeldLog::new()
    }
}

impl Write for HeldLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut held = self.0.lock().map_err(|_| std::io::Error::other("log lock poisoned"))?;
        if !held.holding {
            drop(held);
            return std::io::stderr().write(buf);
        }
        if held.bytes.len() + buf.len() > HELD_LOG_MAX {
            held.dropped += buf.len();
        } else {
            held.bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// What the view reads from the rest of trapstream while it runs.
pub struct Feed<'a> {
    pub records: &'a Receiver<Item>,
    pub stats: &'a Stats,
    pub drop_reasons: &'a DropReasons,
    /// The ledger now, kernel counters included.
    pub ledger: &'a dyn Fn() -> Snapshot,
    /// True when the view must end without a key: a signal, a failed thread.
    pub ended: &'a mut dyn FnMut() -> bool,
    /// Called once a tick (the clock's boot-to-wall offset).
    pub tick: &'a dyn Fn(),
}

/// The terminal, taken over (raw mode, alternate screen, no cursor) until
/// `close` or drop gives it back, and the tallies drawn on it.
pub struct Screen {
    terminal: Option<DefaultTerminal>,
    tally: tally::Tally,
    started: Instant,
    table: Table,
    sort: Sort,
    packets: bool,
    log: HeldLog,
}

impl Screen {
    /// `packets`: records are aggregated flows (-u) and count their packets.
    pub fn open(window: Duration, packets: bool, log: HeldLog) -> Result<Screen> {
        // A panic anywhere must not leave the shell in raw mode on the
        // alternate screen; the hook runs before the default one prints.
        let previous = std::panic::take_hook();
        let hook_log = log.clone();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            hook_log.release();
            previous(info);
        }));
        let terminal = ratatui::try_init().map_err(|e| {
            // Raw mode may be on even though the alternate screen failed.
            restore();
            Error::io("taking over the terminal")(e)
        })?;
        let mut screen = Screen {
            terminal: Some(terminal),
            tally: tally::Tally::new(window.as_secs()),
            started: Instant::now(),
            table: Table::default(),
            sort: Sort::default(),
            packets,
            log,
        };
        if let Some(t) = screen.terminal.as_mut() {
            t.hide_cursor().map_err(Error::io("hiding the cursor"))?;
        }
        Ok(screen)
    }

    /// Count and draw until q, Ctrl-C or `feed.ended`.
    pub fn run(&mut self, feed: &mut Feed<'_>) -> Result<()> {
        let mut next_draw = Instant::now();
        loop {
            let drained = self.take(feed.records, feed.stats, feed.drop_reasons, DRAIN_BATCH);
            let wait = if drained == DRAIN_BATCH { Duration::ZERO } else { KEY_WAIT };
            if event::poll(wait).map_err(Error::io("reading the terminal"))? {
                match event::read().map_err(Error::io("reading the terminal"))? {
                    Event::Key(key) if key.kind != KeyEventKind::Release => match key.code {
                        KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => return Ok(()),
                        KeyCode::Char('v') | KeyCode::Tab => self.table = self.table.next(),
                        KeyCode::BackTab => self.table = self.table.next().next(),
                        KeyCode::Char('s') => self.sort = self.sort.next(),
                        _ => continue,
                    },
                    Event::Resize(..) => {}
                    _ => continue,
                }
                next_draw = Instant::now();
            }
            if (feed.ended)() {
                return Ok(());
            }
            if Instant::now() >= next_draw {
                (feed.tick)();
                self.draw(&(feed.ledger)())?;
                next_draw = Instant::now() + REFRESH;
            }
        }
    }

    /// Count what is left in the channel once the capture has stopped (the
    /// ledger counts it as shown), then give the terminal back and write the
    /// log held meanwhile.
    pub fn close(mut self, records: &Receiver<Item>, stats: &Stats, drop_reasons: &DropReasons) {
        while self.take(records, stats, drop_reasons, usize::MAX) > 0 {}
        self.give_back();
    }

    fn take(&mut self, records: &Receiver<Item>, stats: &Stats, reasons: &DropReasons, most: usize) -> usize {
        let second = self.started.elapsed().as_secs();
        self.tally.advance(second);
        let mut n = 0;
        for item in records.try_iter().take(most) {
            n += 1;
            if let Item::Record(rec) = item {
                self.tally.add(&rec, reasons, second);
                Stats::add(&stats.sent, 1);
            }
        }
        n
    }

    fn draw(&mut self, ledger: &Snapshot) -> Result<()> {
        let elapsed = self.started.elapsed();
        // The window holds the seconds (now - window, now]: the last whole
        // ones and the current, partial one.
        let window = self.tally.window_seconds() as f64;
        let span = elapsed.as_secs_f64().min(window - 1.0 + f64::from(elapsed.subsec_millis()) / 1000.0);
        let frame = draw::Frame_ {
            table: self.table,
            sort: self.sort,
            span,
            uptime: ledger.uptime_seconds,
            packets: self.packets,
            ledger,
        };
        let Some(terminal) = self.terminal.as_mut() else { return Ok(()) };
        terminal.draw(|f| draw::draw(f, &self.tally, &frame)).map_err(Error::io("drawing"))?;
        Ok(())
    }

    fn give_back(&mut self) {
        if let Some(mut terminal) = self.terminal.take() {
            let _ = terminal.show_cursor();
            restore();
            self.log.release();
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// Leave the alternate screen, show the cursor, cooked mode again. Safe to
/// repeat (the panic hook and `give_back` may both run).
fn restore() {
    let _ = execute!(std::io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
}
