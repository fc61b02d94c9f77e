//! The import formats' lines as Segment events: CDNOW purchase rows and MovieLens ratings. Each
//! line becomes a Segment call and goes through the one parser ([`crate::parse_event`]), so an
//! imported event is held to what an API call is.

use chrono::NaiveDate;

use crate::event::{CallType, Event};
use crate::parse::Envelope;

/// The e-commerce Spec's name for a purchase.
pub const ORDER_COMPLETED: &str = "Order Completed";

/// One CDNOW row (`customer_id date number_of_cds dollar_value`, or with a sample column) as an
/// `Order Completed` track; the header gives `None`. The message id is derived from the row,
/// so importing the same file twice stores it once. `shift` moves its date; the customer's
/// first row (tracked in `consented`) grants `consent`.
///
/// # Errors
/// The line's problem, prefixed with its number.
pub fn cdnow_line(
    line: &str,
    line_no: u64,
    shift: chrono::TimeDelta,
    env: &Envelope,
    consent: &[String],
    consented: &mut std::collections::HashSet<String>,
) -> Result<Option<Event>, String> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    let (customer, date, cds, dollars) = match cols.as_slice() {
        [c, d, n, v] => (*c, *d, *n, *v),
        [c, _sample, d, n, v] => (*c, *d, *n, *v),
        _ => {
            return Err(line_error(
                line_no,
                "expected 4 (or 5) whitespace-separated columns",
            ))
        }
    };
    if line_no == 1 && customer.chars().any(|c| c.is_ascii_alphabetic()) {
        return Ok(None); // header
    }
    let date = NaiveDate::parse_from_str(date, "%Y%m%d")
        .map_err(|_| line_error(line_no, "date must be YYYYMMDD"))?;
    let at = date
        .checked_add_signed(shift)
        .ok_or_else(|| line_error(line_no, "the shifted date is out of range"))?;
    let cds: u32 = cds
        .parse()
        .map_err(|_| line_error(line_no, "number_of_cds must be a whole number"))?;
    let dollars: f64 = dollars
        .parse()
        .ok()
        .filter(|d: &f64| d.is_finite())
        .ok_or_else(|| line_error(line_no, "dollar_value must be a number"))?;
    let body = serde_json::json!({
        "type": "track",
        "messageId": format!("cdnow-{customer}-{}-{line_no}", date.format("%Y%m%d")),
        "userId": customer,
        "event": ORDER_COMPLETED,
        "timestamp": format!("{}T00:00:00.000Z", at.format("%Y-%m-%d")),
        "properties": {"revenue": dollars, "quantity": cds, "currency": "USD"},
        "context": {"library": {"name": "consentric-import", "version": env!("CARGO_PKG_VERSION")}},
    });
    imported_track(body, customer.to_owned(), line_no, env, consent, consented)
}

/// One MovieLens rating (`user item rating timestamp`, tab-separated) as a `Product Reviewed`
/// track; the header gives `None`. The message id comes from user and item, so a second import
/// stores nothing new.
///
/// # Errors
/// The line's problem, prefixed with its number.
pub fn movielens_line(
    line: &str,
    line_no: u64,
    shift: chrono::TimeDelta,
    env: &Envelope,
    consent: &[String],
    consented: &mut std::collections::HashSet<String>,
) -> Result<Option<Event>, String> {
    if line_no == 1 && line.contains(":token") {
        return Ok(None); // header
    }
    let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
    let [user, item, rating, ts] = cols[..] else {
        return Err(line_error(line_no, "expected 4 tab-separated columns"));
    };
    let rating: f64 = rating
        .parse()
        .map_err(|_| line_error(line_no, "rating must be a number"))?;
    let secs: i64 = ts
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite())
        .map(|s| s as i64)
        .ok_or_else(|| line_error(line_no, "timestamp must be seconds since 1970"))?;
    let at = chrono::DateTime::from_timestamp(secs, 0)
        .and_then(|t| t.checked_add_signed(shift))
        .ok_or_else(|| line_error(line_no, "timestamp out of range"))?;
    let customer = format!("ml-{user}");
    let body = serde_json::json!({
        "type": "track",
        "messageId": format!("ml-{user}-{item}"),
        "userId": customer,
        "event": "Product Reviewed",
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "properties": {"product_id": item, "rating": rating},
        "context": {"library": {"name": "consentric-import", "version": env!("CARGO_PKG_VERSION")}},
    });
    imported_track(body, customer, line_no, env, consent, consented)
}

/// Parses an imported track; the customer's first one carries the consent the import grants
/// (Segment's consent object), so it goes through the ordinary consent path.
fn imported_track(
    mut body: serde_json::Value,
    customer: String,
    line_no: u64,
    env: &Envelope,
    consent: &[String],
    consented: &mut std::collections::HashSet<String>,
) -> Result<Option<Event>, String> {
    if !consent.is_empty() && consented.insert(customer) {
        let granted: serde_json::Map<String, serde_json::Value> = consent
            .iter()
            .map(|p| (p.clone(), serde_json::Value::Bool(true)))
            .collect();
        body["context"]["consent"] = serde_json::json!({ "categoryPreferences": granted });
    }
    let bytes = serde_json::to_vec(&body).map_err(|e| line_error(line_no, &e.to_string()))?;
    crate::parse::parse_event(&bytes, CallType::Track, env)
        .map(|b| b.events.into_iter().next())
        .map_err(|e| line_error(line_no, &e.to_string()))
}

fn line_error(line_no: u64, message: &str) -> String {
    format!("line {line_no}: {message}")
}
