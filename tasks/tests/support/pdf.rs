//! Helpers for the PDF tests: text extraction and money formatted independently of the library.

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
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{:02}", if neg { "-" } else { "" }, abs % 100)
}
