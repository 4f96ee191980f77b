//! Generated tables for the pdf tests and benches: the rows of [`report::synth`] as a
//! transactions table.
//!
//! [`report::synth`]: crate::report::synth

use super::{Column, Table};
use crate::report::{Money, synth::Row};

/// The rows as a six-column transactions table for a PDF report.
pub fn transactions_table(rows: &[Row]) -> Table {
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
            Money(r.unit_price_cents).to_string(),
        ]);
    }
    table
}
