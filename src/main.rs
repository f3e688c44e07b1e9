//! Wiring only: parse flags, load and attach, start the poll and sender
//! threads, wait for a signal, then shut down without losing what is queued.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use trapstream::capture::{self, Aggregation, Capture, CaptureConfig, DropReasons, KernelSupport};
use trapstream::cli::{self, Format};
use trapstream::clock::BootToWall;
use trapstream::config::{Config, Output};
use trapstream::encode::{Context, Encoder};
use trapstream::error::{Error, Result};
use trapstream::netdb::NetDb;
use trapstream::pcap;
use trapstream::record;
use trapstream::sender::{self, Item, SenderConfig};
use trapstream::stats::{Snapshot, Stats};
use trapstream::top;
use trapstream::transport::{Framing, NullSink, Packer, Sink, StdoutSink, TcpSink, UdpSink};

/// How long the poll thread sleeps when the ring buffer is empty.
const POLL_IDLE: Duration = Duration::from_millis(5);
/// How often the main thread wakes to refresh the clock offset and check threads.
const TICK: Duration = Duration::from_millis(200);
/// How long a drained flow record may wait for room in the channel.
const FLOW_SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the poll thread waits for room in a full channel before it
/// counts a record lost. While it waits, the kernel's ring buffer keeps what
/// arrives (4 MiB by default, several times the channel), so a burst the
/// sender can work off is delivered, not dropped; a sender that stays stuck
/// costs one wait, then records are shed until it takes one again.
const QUEUE_WAIT: Duration = Duration::from_millis(100);

/// The poll thread's end of the channel to the sender.
struct Handoff {
    tx: crossbeam_channel::Sender<Item>,
    /// The last wait timed out: drop at once until the channel has room.
    shedding: bool,
}

impl Handoff {
    /// Queues `item`; false when it was lost (the caller counts it).
    fn offer(&mut self, item: Item) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => {
                self.shedding = false;
                true
            }
            Err(crossbeam_channel::TrySendError::Full(item)) if !self.shedding => {
                let queued = self.tx.send_timeout(item, QUEUE_WAIT).is_ok();
                self.shedding = !queued;
                queued
            }
            Err(_) => false,
        }
    }
}

fn main() {
    let code = match run().map_err(Error::explain) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("trapstream: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
}

fn run() -> Result<()> {
    let cli = cli::parse(std::env::args_os())?;
    let cfg = Config::load(&cli)?;
    if cfg.top_window.is_some() && !cfg.check_only {
        top::check_terminal()?;
    }
    let level = if cfg.verbose { tracing::Level::DEBUG } else { tracing::Level::INFO };
    let log = tracing_subscriber::fmt().with_target(false).with_max_level(level);
    // top owns the terminal: its log waits until the terminal is given back.
    let held_log = cfg.top_window.map(|_| top::HeldLog::new());
    match held_log.clone() {
        Some(held) => log.with_writer(move || held.clone()).init(),
        None => log.with_writer(std::io::stderr).init(),
    }
    // libbpf's own messages (verifier logs among them) are many lines: they go
    // to the log at debug level (-v) so that a failure is one line by default.
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, libbpf_log)));

    // Before any thread starts, so that every thread inherits the mask and
    // only the main thread's sigtimedwait sees SIGINT/SIGTERM.
    // top also ends cleanly when its terminal goes away (SSH hang-up).
    let signals = match cfg.top_window {
        None => SignalSet::block(&[libc::SIGINT, libc::SIGTERM])?,
        Some(_) => SignalSet::block(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP])?,
    };

    let btf = libbpf_rs::btf::Btf::from_vmlinux().map_err(|e| {
        Error::Environment(format!(
            "reading the kernel's BTF: {e}: trapstream needs a kernel built with CONFIG_DEBUG_INFO_BTF \
             (/sys/kernel/btf/vmlinux)"
        ))
    })?;
    let support = KernelSupport::probe(&btf);
    let drop_reasons = DropReasons::from_btf(&btf);
    drop(btf);

    let mut capture_cfg = CaptureConfig {
        sources: cfg.sources,
        trap_type_mask: cfg.trap_type_mask,
        ring_size: cfg.ring_size,
        flow_capacity: cfg.unique_interval.map(|_| cfg.lru_size),
        exemplars: cfg.exemplars,
        filters: cfg.filters.clone(),
        rate_limit: cfg.rate_limit,
        own_traffic: None,
        raw_snap_len: cfg.pcap.as_ref().map_or(0, |p| p.snap_len),
    };
    // Errors first, so that bad input stays one line; then what is legal
    // but matches nothing.
    capture::check_filters(&capture_cfg.filters, &drop_reasons)?;
    for warning in capture::unmatchable_filters(&cfg.filters, cfg.sources) {
        tracing::warn!("{warning}");
    }
    if cfg.check_only {
        if cfg.sources.devlink && !support.devlink_tracepoint {
            tracing::warn!(
                "this kernel has no devlink_trap_report tracepoint: the devlink source cannot start here"
            );
        }
        eprintln!("trapstream: configuration OK");
        return Ok(());
    }

    let ctx = Context {
        device_ip: cfg.device_ip.to_string(),
        netdb: NetDb::load(),
        drop_reasons,
        taxonomy: cfg.taxonomy.clone(),
    };
    let (mut sink, framing, max_datagram): (Option<Box<dyn Sink + Send>>, _, _) = match &cfg.output {
        Output::Udp { collector } => {
            let framing = if cfg.format == Format::Json { Framing::JsonArray } else { Framing::Lines };
            let sink = UdpSink::connect(*collector)
                .map_err(Error::io(format!("opening a UDP socket to {collector}")))?;
            let local = sink.local_addr().map_err(Error::io("reading the UDP socket's address"))?;
            capture_cfg.own_traffic = Some((local, *collector));
            (Some(Box::new(sink)), framing, cfg.max_datagram)
        }
        // A batch per line: its size is bounded by -b, not by a datagram.
        Output::Tcp { collector, backlog_bytes } => {
            let framing = if cfg.format == Format::Json { Framing::JsonArray } else { Framing::Lines };
            (Some(Box::new(TcpSink::new(*collector, cfg.retry_timeout, *backlog_bytes))), framing, usize::MAX)
        }
        // One record per line; writes are grouped but never split a line.
        Output::Stdout => (Some(Box::new(StdoutSink::new())), Framing::Lines, 1 << 16),
        Output::None => (Some(Box::new(NullSink)), Framing::Lines, 1 << 16),
        // top counts the records itself: no sender, no sink.
        Output::Terminal => (None, Framing::Lines, 0),
    };
    // Opened now, so that a path that cannot be written is one line before capture starts.
    let pcap_writer = match &cfg.pcap {
        None => None,
        Some(p) => Some(pcap::Writer::open(p).map_err(|e| {
            Error::Usage(format!(
                "--pcap {}: {e}",
                cli.pcap.as_deref().unwrap_or("(from the configuration file)")
            ))
        })?),
    };

    let mut storage = MaybeUninit::uninit();
    let mut capture = Capture::load(&capture_cfg, support, &ctx.drop_reasons, &mut storage)?;

    let stats = std::sync::Arc::new(Stats::with_pcap(cfg.pcap.as_ref().map(|_| cfg.output == Output::None)));
    let clock = std::sync::Arc::new(BootToWall::new());
    let (tx, rx) = crossbeam_channel::bounded(cfg.channel_depth);
    // The main thread's handle, for streaming the counters.
    let stats_tx = tx.clone();
    let aggregation = match cfg.unique_interval {
        None => None,
        Some(interval) => {
            let (stats, clock, tx) = (stats.clone(), clock.clone(), tx.clone());
            Some(Aggregation {
                tables: capture.flow_tables()?,
                interval,
                on_flow: Box::new(move |bytes: &[u8]| {
                    // Known even when the exemplar does not decode: the
                    // packets are accounted for either way.
                    let packets = record::flow_packets(bytes).unwrap_or(0);
                    Stats::add(&stats.flow_packets, packets);
                    match record::decode_flow(bytes, clock.get()) {
                        Ok(rec) => {
                            Stats::add(&stats.read, 1);
                            // A flow record stands for many packets: wait for room
                            // (bounded) rather than drop it at the first full channel.
                            if tx.send_timeout(Item::Record(rec), FLOW_SEND_TIMEOUT).is_err() {
                                Stats::add(&stats.channel_lost, 1);
                                Stats::add(&stats.flow_packets_lost, packets);
                            }
                        }
                        Err(err) => {
                            Stats::add(&stats.decode_errors, 1);
                            Stats::add(&stats.flow_packets_lost, packets);
                            tracing::debug!("undecodable flow table entry: {err}");
                        }
                    }
                }),
            })
        }
    };
    let (pcap_tx, pcap_rx) = match &pcap_writer {
        Some(_) => {
            let (tx, rx) = crossbeam_channel::bounded(cfg.channel_depth);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let records_out = cfg.output != Output::None;
    let ring = {
        let (stats, clock) = (stats.clone(), clock.clone());
        let mut handoff = Handoff { tx, shedding: false };
        capture.ring_buffer(move |bytes: &[u8]| {
            match record::decode_with_raw(bytes, clock.get()) {
                Ok((rec, raw)) => {
                    Stats::add(&stats.read, 1);
                    if let Some(pcap_tx) = &pcap_tx {
                        pcap::route(pcap_tx, &rec, raw, &stats);
                    }
                    if records_out && !handoff.offer(Item::Record(rec)) {
                        Stats::add(&stats.channel_lost, 1);
                    }
                }
                Err(err) => {
                    Stats::add(&stats.decode_errors, 1);
                    tracing::debug!("undecodable ring buffer record: {err}");
                }
            }
            0
        })?
    };
    capture.attach(&capture_cfg, support)?;
    tracing::info!(
        "capturing {}{} → {}",
        match (cfg.sources.devlink, cfg.sources.skb) {
            (true, true) => "devlink traps and skb drops",
            (true, false) => "devlink traps",
            _ => "skb drops",
        },
        match cfg.unique_interval {
            Some(i) => format!(
                ", counted per flow every {:?} in tables of {} keys{}",
                i,
                cfg.lru_size,
                match cfg.exemplars {
                    0 => String::new(),
                    n => format!(", the first {n} packets of each new flow at once"),
                }
            ),
            None => String::new(),
        },
        match &cfg.output {
            Output::Udp { collector } => format!("udp://{collector}"),
            Output::Tcp { collector, .. } => format!("tcp://{collector}"),
            Output::Stdout => "stdout".into(),
            Output::None => "no records".into(),
            Output::Terminal => "terminal".into(),
        } + &match &cfg.pcap {
            Some(p) => format!(
                ", packets as pcapng to {}",
                match &p.path {
                    trapstream::config::PcapPath::Stdout => "standard output".to_string(),
                    trapstream::config::PcapPath::File(path) => path.display().to_string(),
                }
            ),
            None => String::new(),
        }
    );

    let sender_cfg = SenderConfig {
        batch_size: cfg.batch_size,
        batch_interval: cfg.batch_interval,
        flush_when_idle: cfg.output == Output::Stdout,
        verbose: cfg.verbose,
    };
    let stop = AtomicBool::new(false);
    // Raised by the sender when the output is gone for good (stdout's reader).
    let output_failed = AtomicBool::new(false);
    let outcome = thread::scope(|scope| -> Result<()> {
        let poller = thread::Builder::new()
            .name("poll".into())
            .spawn_scoped(scope, || {
                let result = capture::poll(&ring, &stop, POLL_IDLE, aggregation, &stats);
                // Dropping the ring buffer drops the channel's sender: the
                // sender thread then drains what is queued and exits.
                drop(ring);
                result
            })
            .map_err(Error::io("starting the poll thread"))?;
        if let Some(window) = cfg.top_window {
            // The view takes the sender's place, on this thread.
            drop(stats_tx);
            let mut screen =
                top::Screen::open(window, cfg.unique_interval.is_some(), held_log.unwrap_or_default());
            let viewed = match &mut screen {
                Ok(screen) => screen.run(&mut top::Feed {
                    records: &rx,
                    stats: &stats,
                    drop_reasons: &ctx.drop_reasons,
                    ledger: &|| stats.snapshot(capture.kernel_counters().unwrap_or_default()),
                    ended: &mut || signals.wait(Duration::ZERO).is_some() || poller.is_finished(),
                    tick: &|| clock.refresh(),
                }),
                Err(_) => Ok(()),
            };
            capture.detach();
            stop.store(true, Ordering::Release);
            let polled = poller.join().unwrap_or_else(|_| Err(Error::Usage("poll thread panicked".into())));
            match screen {
                Ok(screen) => screen.close(&rx, &stats, &ctx.drop_reasons),
                Err(err) => {
                    // Read but never shown: counted, as a full channel's are.
                    Stats::add(&stats.channel_lost, rx.try_iter().count() as u64);
                    return Err(err);
                }
            }
            return viewed.and(polled);
        }
        let sender = thread::Builder::new()
            .name("sender".into())
            .spawn_scoped(scope, || {
                let encoder = Encoder::new(cfg.format);
                let packer = Packer::new(framing, max_datagram);
                let Some(sink) = sink.as_mut() else {
                    return Err(Error::Usage("no output to stream to".into()));
                };
                sender::run(rx, &ctx, encoder, packer, sink.as_mut(), &sender_cfg, &stats, &output_failed)
            })
            .map_err(Error::io("starting the sender thread"))?;
        let pcap_thread = match (pcap_writer, pcap_rx) {
            (Some(writer), Some(rx)) => Some(
                thread::Builder::new()
                    .name("pcap".into())
                    .spawn_scoped(scope, || {
                        // With no other output, a reader that leaves ends trapstream.
                        let failed = (!records_out).then_some(&output_failed);
                        writer.run(rx, &ctx, &stats, &stop, failed)
                    })
                    .map_err(Error::io("starting the pcap thread"))?,
            ),
            _ => None,
        };

        let mut next_stats = cfg.stats_interval.map(|i| Instant::now() + i);
        loop {
            if let Some(sig) = signals.wait(TICK) {
                tracing::info!("signal {sig}: flushing and exiting");
                break;
            }
            if poller.is_finished() || sender.is_finished() || output_failed.load(Ordering::Acquire) {
                break;
            }
            clock.refresh();
            if let (Some(at), Some(interval)) = (next_stats, cfg.stats_interval) {
                if Instant::now() >= at {
                    let snapshot = log_stats(&capture, &stats, "stats");
                    // A full channel is busy with events; the next report will do.
                    let _ = stats_tx.try_send(Item::Stats(snapshot));
                    next_stats = Some(at + interval);
                }
            }
        }
        // Stop new events first, then drain the ring buffer, then the channel.
        capture.detach();
        stop.store(true, Ordering::Release);
        let polled = poller.join().unwrap_or_else(|_| Err(Error::Usage("poll thread panicked".into())));
        if cfg.stats_interval.is_some() {
            // The kernel's counters are final now; the sender's are final
            // only once it has drained the queue, so it takes the snapshot.
            // A send fails only if the sender is gone, with nothing to stream.
            let _ = stats_tx.send(Item::Final(capture.kernel_counters().unwrap_or_default()));
        }
        // The last handle to the channel: the sender drains it and exits.
        drop(stats_tx);
        let sent = sender.join().unwrap_or_else(|_| Err(Error::Usage("sender thread panicked".into())));
        // Its channel closed with the ring buffer: it has written or counted everything.
        let captured = match pcap_thread {
            Some(t) => t.join().map_err(|_| Error::Usage("pcap thread panicked".into())),
            None => Ok(()),
        };
        polled.and(sent).and(captured)
    });
    log_stats(&capture, &stats, "final");
    outcome
}

fn log_stats(capture: &Capture<'_>, stats: &Stats, label: &str) -> Snapshot {
    match capture.kernel_counters() {
        Ok(kernel) => {
            let snapshot = stats.snapshot(kernel);
            tracing::info!("{label}: {snapshot}");
            snapshot
        }
        Err(err) => {
            let snapshot = stats.snapshot(Default::default());
            tracing::warn!("{label}: {snapshot} (kernel counters unavailable: {err})");
            snapshot
        }
    }
}

fn libbpf_log(level: libbpf_rs::PrintLevel, message: String) {
    let message = message.trim_end();
    match level {
        libbpf_rs::PrintLevel::Warn => tracing::debug!("libbpf: {message}"),
        _ => tracing::trace!("libbpf: {message}"),
    }
}

/// Signals blocked in every thread and taken synchronously by the main thread.
struct SignalSet(libc::sigset_t);

impl SignalSet {
    fn block(signals: &[libc::c_int]) -> Result<SignalSet> {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: set is a valid sigset_t; the signal numbers are valid constants.
        unsafe {
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
        }
        // SAFETY: set is initialised; a null old-set pointer is allowed.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(Error::Io {
                what: "blocking signals".into(),
                source: std::io::Error::from_raw_os_error(rc),
            });
        }
        Ok(SignalSet(set))
    }

    /// The signal that arrived within `timeout`, if any.
    fn wait(&self, timeout: Duration) -> Option<libc::c_int> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: the set and timespec are valid for the call; info may be null.
        let sig = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) };
        (sig > 0).then_some(sig)
    }
}
