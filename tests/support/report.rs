//! Helpers for the report and PDF tests: a transactions table and PDF text extraction.
#![allow(dead_code, clippy::unwrap_used)]

use offload_tasks::pdf::{Column, Table};
use offload_tasks::report::synth;

/// The generated rows as a six-column table.
pub(crate) fn transactions_table(rows: &[synth::Row]) -> Table {
    let columns = vec![
        Column::left("Date"),
        Column::left("Category").weight(1.4),
        Column::left("Region"),
        Column::left("Description").weight(1.6),
        Column::right("Qty").weight(0.5),
        Column::right("Unit price"),
    ];
    let mut table = Table::new("Transactions", columns);
    for r in rows {
        table.rows.push(vec![
            r.date.clone(),
            r.category.to_owned(),
            r.region.to_owned(),
            r.description.to_owned(),
            r.quantity.to_string(),
            format!(
                "{}.{:02}",
                r.unit_price_cents / 100,
                r.unit_price_cents % 100
            ),
        ]);
    }
    table
}

/// Parses the PDF and returns each page's extracted text.
pub(crate) fn page_texts(bytes: &[u8]) -> Vec<String> {
    let doc = lopdf::Document::load_mem(bytes).unwrap();
    let pages = doc.get_pages();
    pages
        .keys()
        .map(|&n| doc.extract_text(&[n]).unwrap())
        .collect()
}

/// Formats minor units as `1,234.56`, independently of the library.
pub(crate) fn grouped_money(minor: i64) -> String {
    let neg = minor < 0;
    let abs = minor.unsigned_abs();
    let int = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{:02}", if neg { "-" } else { "" }, abs % 100)
}
