//! The order lifecycle as two pure tables: what a newer delivery does to the order
//! ([`decide`]), and what that does to each line given the line's state ([`line_step`]).
//! The module documentation of [`crate::orders`] prints both tables with the reasons.

use omnistock_connectors::OrderStatus;

/// What an applied delivery asks of every line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Make sure each line holds its reservation (retrying lines that were oversold).
    Reserve,
    /// Make sure each line has left the shelf.
    Ship,
    /// Give back what unshipped lines hold; shipped lines stay shipped.
    Release,
    /// Restock shipped lines; give back what unshipped lines hold.
    Return,
}

/// The decision for one delivery newer than what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Store `status` and run `action` on every line.
    Apply {
        /// The order status to store.
        status: OrderStatus,
        /// What the lines do.
        action: Action,
    },
    /// A move omnistock does not make (a regress, or a reopening after a final state): nothing
    /// moves, only the newer timestamp is kept.
    Ignore {
        /// Why, for the log.
        reason: &'static str,
    },
}

/// What a newer delivery with status `incoming` does to an order stored with `stored` (`None`: first
/// seen).
pub fn decide(stored: Option<OrderStatus>, incoming: OrderStatus) -> Move {
    use OrderStatus::*;
    let apply = |status, action| Move::Apply { status, action };
    match (stored, incoming) {
        (None | Some(Pending), Pending) => apply(Pending, Action::Reserve),
        (None | Some(Pending | Paid), Paid) => apply(Paid, Action::Reserve),
        (Some(Paid), Pending) => Move::Ignore {
            reason: "a paid order does not return to pending",
        },
        (None | Some(Pending | Paid | Shipped | Cancelled), Shipped) => {
            apply(Shipped, Action::Ship)
        }
        (None | Some(Pending | Paid | Shipped | Cancelled), Cancelled) => {
            apply(Cancelled, Action::Release)
        }
        (None | Some(Pending | Paid), Returned) => apply(Returned, Action::Release),
        (Some(Shipped | Cancelled | Returned), Returned) => apply(Returned, Action::Return),
        (Some(Shipped), Pending | Paid) => Move::Ignore {
            reason: "a shipped order does not return to pending or paid",
        },
        (Some(Cancelled), Pending | Paid) => Move::Ignore {
            reason: "a cancelled order does not reopen",
        },
        (Some(Returned), Pending | Paid | Shipped | Cancelled) => Move::Ignore {
            reason: "returned is final",
        },
    }
}

/// Where an order line stands; stored as `order_lines.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineState {
    /// Holds a reservation of its full quantity.
    Open,
    /// Left the shelf (from its reservation, or directly).
    Shipped,
    /// Holds nothing and never shipped: cancelled, or returned before shipping.
    Released,
    /// Shipped, then restocked.
    Returned,
    /// Needed stock and could not get it all; holds nothing. Retried by later deliveries.
    Oversold,
    /// The SKU is not in the catalog; nothing moves. Retried by later deliveries.
    UnknownSku,
    /// Fulfilled by the channel from its own stock (Amazon FBA); never moves our stock.
    External,
}

impl LineState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LineState::Open => "open",
            LineState::Shipped => "shipped",
            LineState::Released => "released",
            LineState::Returned => "returned",
            LineState::Oversold => "oversold",
            LineState::UnknownSku => "unknown_sku",
            LineState::External => "external",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<LineState> {
        Some(match s {
            "open" => LineState::Open,
            "shipped" => LineState::Shipped,
            "released" => LineState::Released,
            "returned" => LineState::Returned,
            "oversold" => LineState::Oversold,
            "unknown_sku" => LineState::UnknownSku,
            "external" => LineState::External,
            _ => return None,
        })
    }
}

/// What one line does under an [`Action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStep {
    /// Nothing.
    Keep,
    /// Reserve the full quantity across the channel's locations → `open`, or `oversold`.
    Reserve,
    /// Take the full quantity off on_hand directly (never reserved) → `shipped`, or `oversold`.
    ShipDirect,
    /// Turn the reservation into a shipment: on_hand −n, reserved −n → `shipped`.
    ShipReserved,
    /// Give the reservation back: reserved −n → `released`.
    ReleaseReserved,
    /// Nothing is held: just → `released`.
    MarkReleased,
    /// Put shipped units back: on_hand +n → `returned`.
    Restock,
}

/// The step for a line of a known, stocked SKU in `state` (`None`: first seen, or its SKU just
/// became known). `unknown_sku` and `external` lines never reach here.
pub fn line_step(action: Action, state: Option<LineState>) -> LineStep {
    use LineState::*;
    match (action, state) {
        (Action::Reserve, None | Some(Oversold)) => LineStep::Reserve,
        (Action::Ship, None | Some(Oversold | Released)) => LineStep::ShipDirect,
        (Action::Ship, Some(Open)) => LineStep::ShipReserved,
        (Action::Release | Action::Return, None | Some(Oversold)) => LineStep::MarkReleased,
        (Action::Release | Action::Return, Some(Open)) => LineStep::ReleaseReserved,
        (Action::Return, Some(Shipped)) => LineStep::Restock,
        _ => LineStep::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    const ALL: [OrderStatus; 5] = [Pending, Paid, Shipped, Cancelled, Returned];

    #[test]
    fn every_pair_has_a_decision_and_terminal_states_hold() {
        for s in ALL {
            for i in ALL {
                let m = decide(Some(s), i);
                if s == Returned && i != Returned {
                    assert!(matches!(m, Move::Ignore { .. }), "{s:?} → {i:?}");
                }
                if let Move::Apply { status, .. } = m {
                    assert_eq!(status, i, "an applied move stores what the channel says");
                }
            }
        }
        assert_eq!(
            decide(None, Shipped),
            Move::Apply {
                status: Shipped,
                action: Action::Ship
            }
        );
        assert_eq!(
            decide(Some(Shipped), Cancelled),
            Move::Apply {
                status: Cancelled,
                action: Action::Release
            },
            "cancel after shipping restocks nothing: shipped lines keep"
        );
        assert!(matches!(decide(Some(Paid), Pending), Move::Ignore { .. }));
        assert!(matches!(decide(Some(Cancelled), Paid), Move::Ignore { .. }));
    }

    #[test]
    fn lines_never_move_twice() {
        // Replaying an action on the state it produced is a no-op.
        for (action, done) in [
            (Action::Reserve, LineState::Open),
            (Action::Ship, LineState::Shipped),
            (Action::Release, LineState::Released),
            (Action::Return, LineState::Returned),
            (Action::Return, LineState::Released),
        ] {
            assert_eq!(line_step(action, Some(done)), LineStep::Keep, "{action:?}");
        }
        assert_eq!(
            line_step(Action::Release, Some(LineState::Shipped)),
            LineStep::Keep
        );
        assert_eq!(
            line_step(Action::Reserve, Some(LineState::Released)),
            LineStep::Keep
        );
        assert_eq!(
            line_step(Action::Ship, Some(LineState::Oversold)),
            LineStep::ShipDirect
        );
    }

    #[test]
    fn line_states_round_trip() {
        for s in [
            LineState::Open,
            LineState::Shipped,
            LineState::Released,
            LineState::Returned,
            LineState::Oversold,
            LineState::UnknownSku,
            LineState::External,
        ] {
            assert_eq!(LineState::parse(s.as_str()), Some(s));
        }
        assert_eq!(LineState::parse("lost"), None);
    }
}
