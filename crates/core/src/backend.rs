//! Helpers for backend crates.
//!
//! [`define_layer!`](crate::define_layer) declares a backend's named layer type (for example
//! `FluentLayer`) as a thin wrapper around [`ShipLayer`](crate::ShipLayer), forwarding every
//! `Layer` callback, so users see `FluentLayer` in their types and docs while the capture code
//! exists once, here.

/// Declares `pub struct $name(ShipLayer)` implementing `tracing_subscriber::Layer` by
/// forwarding to the wrapped [`ShipLayer`](crate::ShipLayer), plus `From<ShipLayer>`,
/// `handle()` and `inner()`.
///
/// ```
/// logship_core::define_layer!(
///     /// The layer for my backend.
///     MyLayer
/// );
/// ```
#[macro_export]
macro_rules! define_layer {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name($crate::ShipLayer);

        impl $name {
            /// A handle for stats and flushing (see [`Handle`]($crate::Handle)).
            pub fn handle(&self) -> $crate::Handle {
                self.0.handle()
            }
            /// The shared core layer inside.
            pub fn inner(&self) -> &$crate::ShipLayer {
                &self.0
            }
        }

        impl ::core::convert::From<$crate::ShipLayer> for $name {
            fn from(l: $crate::ShipLayer) -> Self {
                Self(l)
            }
        }

        impl<S> $crate::__private::Layer<S> for $name
        where
            S: $crate::__private::Subscriber + for<'a> $crate::__private::LookupSpan<'a>,
        {
            fn on_new_span(
                &self,
                attrs: &$crate::__private::Attributes<'_>,
                id: &$crate::__private::Id,
                ctx: $crate::__private::Context<'_, S>,
            ) {
                <$crate::ShipLayer as $crate::__private::Layer<S>>::on_new_span(&self.0, attrs, id, ctx)
            }
            fn on_record(
                &self,
                id: &$crate::__private::Id,
                values: &$crate::__private::SpanRecord<'_>,
                ctx: $crate::__private::Context<'_, S>,
            ) {
                <$crate::ShipLayer as $crate::__private::Layer<S>>::on_record(&self.0, id, values, ctx)
            }
            fn on_enter(&self, id: &$crate::__private::Id, ctx: $crate::__private::Context<'_, S>) {
                <$crate::ShipLayer as $crate::__private::Layer<S>>::on_enter(&self.0, id, ctx)
            }
            fn on_exit(&self, id: &$crate::__private::Id, ctx: $crate::__private::Context<'_, S>) {
                <$crate::ShipLayer as $crate::__private::Layer<S>>::on_exit(&self.0, id, ctx)
            }
            fn event_enabled(&self, event: &$crate::__private::Event<'_>, ctx: $crate::__private::Context<'_, S>) -> bool {
                <$crate::ShipLayer as $crate::__private::Layer<S>>::event_enabled(&self.0, event, ctx)
            }
            fn on_event(&self, event: &$crate::__private::Event<'_>, ctx: $crate::__private::Context<'_, S>) {
                <$crate::ShipLayer as $crate::__private::Layer<S>>::on_event(&self.0, event, ctx)
            }
            fn on_close(&self, id: $crate::__private::Id, ctx: $crate::__private::Context<'_, S>) {
                <$crate::ShipLayer as $crate::__private::Layer<S>>::on_close(&self.0, id, ctx)
            }
            fn on_register_dispatch(&self, subscriber: &$crate::__private::Dispatch) {
                <$crate::ShipLayer as $crate::__private::Layer<S>>::on_register_dispatch(&self.0, subscriber)
            }
        }
    };
}

#[doc(hidden)]
pub mod __private {
    pub use tracing_core::span::{Attributes, Id, Record as SpanRecord};
    pub use tracing_core::{Dispatch, Event, Subscriber};
    pub use tracing_subscriber::layer::{Context, Layer};
    pub use tracing_subscriber::registry::LookupSpan;
}
