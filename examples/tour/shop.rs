//! The sample service the tour runs: a small shop handling orders, instrumented with plain
//! `tracing` and logship's conventional fields.

use std::time::Duration;

use logship::core::Snapshot;
use tracing::{error, info, info_span, instrument, warn};

/// One order.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: u64,
    pub customer: &'static str,
    pub items: u32,
    pub total: f64,
}

/// The shop: opens, handles orders in rounds, closes. Order ids that are multiples of 7 are
/// declined by the payment service; big orders trigger a stock warning.
pub struct Shop {
    span: tracing::Span,
    next_id: u64,
}

impl Shop {
    pub fn open() -> Shop {
        let span = info_span!("shop", source_fqn = "APPL=shop#SERVER=web1#DATACENTER=dc1");
        span.in_scope(|| info!(version = env!("CARGO_PKG_VERSION"), "shop open"));
        Shop { span, next_id: 1 }
    }

    /// Handles `n` more orders.
    pub fn handle(&mut self, n: u64) {
        let _e = self.span.enter();
        for _ in 0..n {
            let id = self.next_id;
            self.next_id += 1;
            let order = Order {
                id,
                customer: ["ann", "bob", "cyd"][(id % 3) as usize],
                items: (id % 5 + 1) as u32,
                total: 9.5 * ((id % 5 + 1) as f64),
            };
            let _ = handle_order(&order);
        }
    }

    /// Orders handled so far.
    pub fn orders(&self) -> u64 {
        self.next_id - 1
    }

    pub fn close(self) {
        self.span
            .in_scope(|| info!(orders = self.next_id - 1, "shop closed"));
    }
}

#[instrument(skip(order), fields(correlator = %format!("order-{}", order.id), order_id = order.id, customer = order.customer))]
fn handle_order(order: &Order) -> Result<(), String> {
    info!(items = order.items, total = order.total, "order received");
    check_stock(order);
    charge(order)?;
    let snap = Snapshot::new("order")
        .with_category("sales")
        .with_property("items", i64::from(order.items))
        .with_property("total", order.total)
        .with_property("express", order.items > 3);
    info!(snapshot = %snap, "order placed");
    Ok(())
}

#[instrument(skip(order), fields(order_id = order.id))]
fn check_stock(order: &Order) {
    std::thread::sleep(Duration::from_micros(100));
    if order.items >= 5 {
        warn!(
            snapshot.stock.left = 2_i64,
            snapshot.stock.sku = "A-1",
            "stock running low"
        );
    }
}

#[instrument(skip(order), fields(order_id = order.id, amount = order.total), err)]
fn charge(order: &Order) -> Result<(), String> {
    std::thread::sleep(Duration::from_micros(150));
    if order.id.is_multiple_of(7) {
        let e = std::io::Error::other("card declined by issuer");
        error!(
            error = &e as &(dyn std::error::Error + 'static),
            "payment failed"
        );
        return Err(e.to_string());
    }
    Ok(())
}
