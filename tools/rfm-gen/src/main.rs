//! rfm-gen: deterministic retail invoice lines shaped like the public Online Retail II data
//! set, written in PostgreSQL COPY text format (tab separated, `\N` for NULL).
//!
//! Columns: invoice, stock_code, quantity, invoice_date, price, customer_id, country; with
//! `--description`, the eight columns of Online Retail II: invoice, stock_code, description,
//! quantity, invoice_date, price, customer_id, country (a product's description is fixed
//! text of three to five words, as in the real data).
//! The dirt of real data is there on purpose: cancelled invoices ('C' prefix, negative
//! quantities), invoices without a customer, exact duplicate lines, a few extreme
//! quantities and prices, zero prices. Customers follow a handful of behaviours
//! (loyal, regular, one-time, lapsed big spenders, new, occasional, wholesale) so that
//! segmentation has something to find. Same arguments and seed: byte-identical output.
//!
//! With `--associations`, invoices also carry planted product associations (market-basket
//! rules to find): bundles whose first product pulls in the others with a fixed probability,
//! one of them only for the big-spending customers (loyal, wholesale, lapsed big spenders).
//! `BUNDLES` lists them; without the flag the output is what it always was.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

/// splitmix64: small, fast, and good enough for synthetic data.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f()
    }
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f()).ln()
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f() < p
    }
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (1.0 - self.f(), self.f());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Independent stream for item `i` of kind `tag`, so parts can be regenerated on demand.
fn stream(seed: u64, tag: u64, i: u64) -> Rng {
    let mut r = Rng::new(seed ^ tag.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ i.wrapping_mul(0xA076_1D64_78BD_642F));
    r.next_u64();
    r
}

/// 2009-12-01 00:00:00 UTC as days since 1970-01-01, and the span of the data.
const START_DAY: i64 = 14579;
const DAYS: f64 = 739.0; // through 2011-12-09
const FIRST_INVOICE: u64 = 489_434;
const FIRST_CUSTOMER: u64 = 12_346;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Loyal,
    Regular,
    OneTime,
    LapsedBig,
    New,
    Occasional,
    Wholesale,
}

const KINDS: [(Kind, f64); 7] = [
    (Kind::Loyal, 0.14),
    (Kind::Regular, 0.24),
    (Kind::OneTime, 0.30),
    (Kind::LapsedBig, 0.08),
    (Kind::New, 0.14),
    (Kind::Occasional, 0.09),
    (Kind::Wholesale, 0.01),
];

const COUNTRIES: [(&str, f64); 10] = [
    ("United Kingdom", 0.86),
    ("Germany", 0.03),
    ("France", 0.025),
    ("EIRE", 0.02),
    ("Spain", 0.012),
    ("Netherlands", 0.012),
    ("Belgium", 0.01),
    ("Switzerland", 0.008),
    ("Portugal", 0.008),
    ("Australia", 0.015),
];

fn pick<T: Copy>(r: &mut Rng, table: &[(T, f64)]) -> T {
    let mut u = r.f() * table.iter().map(|t| t.1).sum::<f64>();
    for &(v, w) in table {
        if u < w {
            return v;
        }
        u -= w;
    }
    table[table.len() - 1].0
}

struct Customer {
    id: u64,
    kind: Kind,
    country: &'static str,
}

/// Purchase days (fractional, from the start) of one customer.
fn schedule(r: &mut Rng, kind: Kind) -> Vec<f64> {
    let mut days = Vec::new();
    let run = |r: &mut Rng, start: f64, stop: f64, mean_gap: f64, days: &mut Vec<f64>| {
        let mut t = start;
        while t < stop.min(DAYS) {
            days.push(t);
            t += r.exp(mean_gap).max(0.5);
        }
    };
    match kind {
        Kind::Loyal | Kind::Wholesale => {
            let gap = r.range(10.0, 28.0);
            let start = r.range(0.0, 120.0);
            run(r, start, DAYS, gap, &mut days);
        }
        Kind::Regular => {
            let gap = r.range(40.0, 90.0);
            let stop = if r.chance(0.3) { r.range(300.0, DAYS) } else { DAYS };
            let start = r.range(0.0, 450.0);
            run(r, start, stop, gap, &mut days);
        }
        Kind::OneTime => days.push(r.range(0.0, DAYS)),
        Kind::LapsedBig => {
            let gap = r.range(18.0, 40.0);
            let (start, stop) = (r.range(0.0, 150.0), r.range(250.0, 450.0));
            run(r, start, stop, gap, &mut days);
        }
        Kind::New => {
            let start = r.range(DAYS - 90.0, DAYS - 1.0);
            let n = 1 + r.below(3);
            for i in 0..n {
                days.push(start + (DAYS - start) * i as f64 / n as f64);
            }
        }
        Kind::Occasional => {
            let start = r.range(0.0, 300.0);
            for _ in 0..2 + r.below(3) {
                days.push(start + r.range(0.0, 200.0));
            }
        }
    }
    if days.is_empty() {
        days.push(r.range(0.0, DAYS));
    }
    days
}

fn basket_factor(kind: Kind) -> f64 {
    match kind {
        Kind::Wholesale => 12.0,
        Kind::LapsedBig => 4.0,
        Kind::Loyal => 1.5,
        _ => 1.0,
    }
}

/// An invoice event, sorted by time to number the invoices.
#[derive(Clone, Copy)]
struct Event {
    day: f64,
    /// Index into customers, or u32::MAX for a guest (NULL customer).
    customer: u32,
    /// For a cancellation: the seed and line count of the cancelled invoice.
    cancels: Option<(u64, u32)>,
    lines: u32,
    seed: u64,
}

const PACKS: [(u64, f64); 10] =
    [(1, 0.22), (2, 0.14), (3, 0.08), (4, 0.09), (6, 0.14), (8, 0.05), (10, 0.06), (12, 0.16), (24, 0.05), (48, 0.01)];

struct Line {
    product: u64,
    stock: String,
    quantity: i64,
    price: f64,
}

/// Planted associations: (products, probability that an invoice with the first product also
/// has each of the others, only for big spenders). Products are popularity ranks (0 is the
/// most popular), so the first products are common enough to be frequent.
const BUNDLES: [(&[u64], f64, bool); 5] =
    [(&[3, 41], 0.7, false), (&[7, 58, 90], 0.6, false), (&[12, 133], 0.5, false), (&[20, 77], 0.8, false), (&[5, 211, 212], 0.65, true)];

/// Adds the planted bundles' products to an invoice's lines (deterministically from its seed).
fn plant(seed: u64, ev_seed: u64, big: bool, lines: &mut Vec<Line>) {
    let mut r = Rng::new(ev_seed ^ 0xB0B0_0001);
    for (products, p, big_only) in BUNDLES {
        if big_only && !big {
            continue;
        }
        if !lines.iter().any(|l| l.product == products[0]) {
            continue;
        }
        for &other in &products[1..] {
            if r.chance(p) && !lines.iter().any(|l| l.product == other) {
                let quantity = pick(&mut r, &PACKS) as i64;
                lines.push(Line { product: other, stock: stock_code(other), quantity, price: product_price(seed, other) });
            }
        }
    }
}

fn stock_code(product: u64) -> String {
    let code = 10002 + product * 7 % 80000;
    match product % 9 {
        0 => format!("{code}A"),
        1 => format!("{code}B"),
        _ => code.to_string(),
    }
}

fn product_price(seed: u64, product: u64) -> f64 {
    let mut r = stream(seed, 3, product);
    let p = (0.9 + 0.8 * r.normal()).exp().clamp(0.12, 65.0);
    (p * 100.0).round() / 100.0
}

/// The lines of an invoice, regenerated identically from its seed; `plant` adds the planted
/// associations (Some(big spender)).
fn invoice_lines(seed: u64, ev: &Event, factor: f64, products: u64, planted: Option<bool>) -> Vec<Line> {
    let mut lines = base_lines(seed, ev, factor, products);
    if let Some(big) = planted {
        plant(seed, ev.seed, big, &mut lines);
    }
    lines
}

fn base_lines(seed: u64, ev: &Event, factor: f64, products: u64) -> Vec<Line> {
    let mut r = Rng::new(ev.seed);
    (0..ev.lines)
        .map(|_| {
            let product = (products as f64 * r.f() * r.f()) as u64; // popular items first
            let mut quantity = (pick(&mut r, &PACKS) as f64 * factor).round().max(1.0) as i64;
            let mut price = product_price(seed, product);
            let mut stock = stock_code(product);
            if r.chance(2e-5) {
                quantity = 12_000 + r.below(69_000) as i64; // the famous 80995 paper birds
            }
            if r.chance(1e-5) {
                stock = if r.chance(0.5) { "M".into() } else { "AMAZONFEE".into() };
                price = (r.range(1000.0, 11_000.0) * 100.0).round() / 100.0;
                quantity = 1;
            } else if r.chance(0.001) {
                price = 0.0;
            }
            Line { product, stock, quantity, price }
        })
        .collect()
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + (m <= 2) as i64;
    (y, m, d)
}

fn timestamp(day: f64, r: &mut Rng) -> String {
    let whole = day.floor() as i64;
    let (y, m, d) = civil(START_DAY + whole);
    let minute = 7 * 60 + 30 + r.below(11 * 60);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:00+00", minute / 60, minute % 60)
}

struct Args {
    lines: u64,
    customers: u64,
    seed: u64,
    description: bool,
    associations: bool,
}

const COLOURS: [&str; 12] =
    ["WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "BLACK", "VINTAGE", "SILVER", "GOLD", "PAISLEY", "RETROSPOT"];
const STYLES: [&str; 10] = ["HANGING", "HEART", "REGENCY", "JUMBO", "WOODEN", "CERAMIC", "GLASS", "ZINC", "PAPER", "SPOTTY"];
const ITEMS: [&str; 16] = [
    "T-LIGHT HOLDER",
    "LANTERN",
    "CAKE STAND",
    "SHOPPER BAG",
    "LUNCH BAG",
    "BUNTING",
    "TEA CUP AND SAUCER",
    "DOORMAT",
    "PHOTO FRAME",
    "ALARM CLOCK",
    "WATER BOTTLE",
    "PAPER CHAIN KIT",
    "PARTY BUNTING",
    "JAM MAKING SET",
    "CHALKBOARD",
    "STORAGE TIN",
];

/// The description of a product: the same text for every line of that product.
fn description(seed: u64, product: u64) -> String {
    let mut r = stream(seed, 7, product);
    let colour = COLOURS[r.below(COLOURS.len() as u64) as usize];
    let style = STYLES[r.below(STYLES.len() as u64) as usize];
    let item = ITEMS[r.below(ITEMS.len() as u64) as usize];
    if r.chance(0.4) {
        format!("{colour} {item}")
    } else {
        format!("{colour} {style} {item}")
    }
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { lines: 500_000, customers: 4_000, seed: 42, description: false, associations: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        if flag == "--description" {
            a.description = true;
            continue;
        }
        if flag == "--associations" {
            a.associations = true;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value.replace('_', "").parse().map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--lines" => a.lines = n,
            "--customers" => a.customers = n,
            "--seed" => a.seed = n,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.customers == 0 || a.customers > u32::MAX as u64 - 1 || a.lines < a.customers {
        return Err("need 0 < --customers <= --lines".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("rfm-gen: {e}");
            }
            eprintln!(
                "usage: rfm-gen [--lines N (500000)] [--customers N (4000)] [--seed N (42)] [--description] [--associations] > lines.tsv"
            );
            return ExitCode::from(2);
        }
    };
    match generate(&args, &mut BufWriter::with_capacity(1 << 20, io::stdout().lock())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rfm-gen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(args: &Args, out: &mut impl Write) -> io::Result<()> {
    let seed = args.seed;
    let products = 3_000u64;
    let customers: Vec<Customer> = (0..args.customers)
        .map(|i| {
            let mut r = stream(seed, 1, i);
            Customer { id: FIRST_CUSTOMER + i, kind: pick(&mut r, &KINDS), country: pick(&mut r, &COUNTRIES) }
        })
        .collect();

    let mut events: Vec<Event> = Vec::new();
    for (ci, c) in customers.iter().enumerate() {
        let mut r = stream(seed, 2, ci as u64);
        for day in schedule(&mut r, c.kind) {
            events.push(Event { day, customer: ci as u32, cancels: None, lines: 0, seed: r.next_u64() });
        }
    }
    let mut r = stream(seed, 4, 0);
    let guests = events.len() / 8;
    for _ in 0..guests {
        events.push(Event { day: r.range(0.0, DAYS), customer: u32::MAX, cancels: None, lines: 0, seed: r.next_u64() });
    }

    // Spread the requested number of lines over the invoices (geometric basket sizes).
    let mean_lines = (args.lines as f64 / events.len() as f64 / 1.012).max(1.0);
    for ev in events.iter_mut() {
        let mut r = Rng::new(ev.seed);
        r.next_u64();
        ev.lines = (1.0 + r.exp(mean_lines - 1.0)).round().clamp(1.0, 5_000.0) as u32;
    }
    events.sort_by(|a, b| a.day.total_cmp(&b.day));

    // About 2% of customer invoices are cancelled later, partly or wholly.
    let mut r = stream(seed, 5, 0);
    let originals = events.len();
    for i in 0..originals {
        let ev = events[i];
        if ev.customer != u32::MAX && r.chance(0.02) {
            let day = (ev.day + r.range(0.0, 30.0)).min(DAYS - 0.01);
            let lines = 1 + r.below(ev.lines.min(3) as u64) as u32;
            let cancels = Some((ev.seed, ev.lines));
            events.push(Event { day, customer: ev.customer, cancels, lines, seed: r.next_u64() });
        }
    }
    // Stable sort keeps originals before their cancellations on the same day.
    events.sort_by(|a, b| a.day.total_cmp(&b.day));
    let mut written = 0u64;
    let mut dup = stream(seed, 6, 0);
    for (n, ev) in events.iter().enumerate() {
        let number = FIRST_INVOICE + n as u64;
        let mut tr = Rng::new(ev.seed ^ 0x5555);
        let ts = timestamp(ev.day, &mut tr);
        let (customer_id, country, factor) = match customers.get(ev.customer as usize) {
            Some(c) => (c.id.to_string(), c.country, basket_factor(c.kind)),
            None => ("\\N".to_string(), "United Kingdom", 1.0),
        };
        let planted = args.associations.then(|| {
            customers.get(ev.customer as usize).is_some_and(|c| matches!(c.kind, Kind::Loyal | Kind::Wholesale | Kind::LapsedBig))
        });
        let (invoice, lines) = match ev.cancels {
            None => (number.to_string(), invoice_lines(seed, ev, factor, products, planted)),
            Some((orig_seed, orig_lines)) => {
                // Regenerate the original's lines and return the first few of them.
                let o = Event { seed: orig_seed, lines: orig_lines, ..*ev };
                let mut lines = invoice_lines(seed, &o, factor, products, planted);
                lines.truncate(ev.lines as usize);
                for l in lines.iter_mut() {
                    l.quantity = -l.quantity;
                }
                (format!("C{number}"), lines)
            }
        };
        for l in &lines {
            let row = if args.description {
                let text = match l.stock.as_str() {
                    "M" => "Manual".to_string(),
                    "AMAZONFEE" => "AMAZON FEE".to_string(),
                    _ => description(seed, l.product),
                };
                format!("{invoice}\t{}\t{text}\t{}\t{ts}\t{:.2}\t{customer_id}\t{country}\n", l.stock, l.quantity, l.price)
            } else {
                format!("{invoice}\t{}\t{}\t{ts}\t{:.2}\t{customer_id}\t{country}\n", l.stock, l.quantity, l.price)
            };
            out.write_all(row.as_bytes())?;
            written += 1;
            if dup.chance(0.01) {
                out.write_all(row.as_bytes())?;
                written += 1;
            }
        }
    }
    out.flush()?;
    eprintln!("rfm-gen: {written} lines, {} invoices, {} customers, seed {seed}", events.len(), customers.len());
    Ok(())
}
