//! Deterministic synthetic transactions for tests, benches and the comparison script.
//!
//! `scripts/report-vs-polars/gen.py` implements the same generator byte for byte.

use std::fmt::Write as _;

use crate::calendar;

/// Category names; some need CSV quoting.
pub const CATEGORIES: [&str; 24] = [
    "Books, Music",
    "Electronics",
    "Garden",
    "Toys \"Deluxe\"",
    "Grocery",
    "Beauty",
    "Sports",
    "Automotive",
    "Office",
    "Pets",
    "Baby",
    "Tools",
    "Jewelry",
    "Shoes",
    "Furniture",
    "Kitchen",
    "Health",
    "Software",
    "Games",
    "Crafts",
    "Outdoor",
    "Lighting",
    "Travel",
    "Watches",
];

const REGIONS: [&str; 6] = ["EU-West", "EU-East", "US-East", "US-West", "APAC", "LATAM"];

const DESCRIPTIONS: [&str; 8] = [
    "standard order",
    "gift, wrapped",
    "bulk purchase",
    "the \"big\" one",
    "promo code applied",
    "repeat customer",
    "web checkout",
    "in-store pickup",
];

/// One generated transaction; `unit_price_cents` is the exact price in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// ISO date.
    pub date: String,
    /// Category.
    pub category: &'static str,
    /// Region.
    pub region: &'static str,
    /// Free text.
    pub description: &'static str,
    /// Whole quantity; negative for returns.
    pub quantity: i64,
    /// Price in cents.
    pub unit_price_cents: i64,
}

/// SplitMix64, chosen because it is a few lines in any language.
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `rows` transactions between 2024-01-01 and 2025-12-31, fully determined by `seed`.
pub fn rows(rows: usize, seed: u64) -> Vec<Row> {
    let mut rng = SplitMix(seed);
    let start = calendar::days_from_civil(2024, 1, 1);
    (0..rows)
        .map(|_| {
            let date = calendar::iso_date(start + rng.below(731) as i32);
            let category = CATEGORIES[rng.below(24) as usize];
            let region = REGIONS[rng.below(6) as usize];
            let description = DESCRIPTIONS[rng.below(8) as usize];
            let mut quantity = 1 + rng.below(20) as i64;
            if rng.below(50) == 0 {
                quantity = -quantity;
            }
            let unit_price_cents = 50 + rng.below(99_950) as i64;
            Row {
                date,
                category,
                region,
                description,
                quantity,
                unit_price_cents,
            }
        })
        .collect()
}

fn push_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// The rows as CSV with the header `date,category,region,description,quantity,unit_price`.
pub fn to_csv(rows: &[Row]) -> Vec<u8> {
    let mut out = String::with_capacity(rows.len() * 56 + 64);
    out.push_str("date,category,region,description,quantity,unit_price\n");
    for r in rows {
        out.push_str(&r.date);
        out.push(',');
        push_field(&mut out, r.category);
        out.push(',');
        push_field(&mut out, r.region);
        out.push(',');
        push_field(&mut out, r.description);
        let _ = writeln!(
            out,
            ",{},{}.{:02}",
            r.quantity,
            r.unit_price_cents / 100,
            r.unit_price_cents % 100
        );
    }
    out.into_bytes()
}

/// The rows as a JSON array of objects; prices are JSON numbers with two decimals.
pub fn to_json(rows: &[Row]) -> Vec<u8> {
    let mut out = String::with_capacity(rows.len() * 120 + 2);
    out.push('[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let _ = write!(
            out,
            "{{\"date\":\"{}\",\"category\":{},\"region\":{},\"description\":{},\"quantity\":{},\"unit_price\":{}.{:02}}}",
            r.date,
            q(r.category),
            q(r.region),
            q(r.description),
            r.quantity,
            r.unit_price_cents / 100,
            r.unit_price_cents % 100
        );
    }
    out.push(']');
    out.into_bytes()
}

/// `to_csv(&rows(rows, seed))`: the benchmark file (1,000,000 rows is about 50 MB).
pub fn csv(rows: usize, seed: u64) -> Vec<u8> {
    to_csv(&self::rows(rows, seed))
}
