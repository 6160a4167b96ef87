//! The keys a leaderboard reads and writes: its board and times, those of a period, and the
//! sources of a combined board, all under the board's hash tag.

use super::ops::Keys;
use super::{Leaderboard, Scope};
use crate::util::window::Windows;

impl Leaderboard {
    /// The keys the object reads.
    pub(super) fn keys(&self) -> Keys {
        match self.settings.scope {
            Scope::AllTime => self.keys_of(None),
            Scope::Period { windows, back } => {
                let index = windows.current().saturating_sub(u64::from(back));
                self.keys_of(Some((windows, index)))
            }
            Scope::Combined {
                windows,
                last,
                aggregate,
                ..
            } => {
                let current = windows.current();
                let base = self.base();
                let first = current.saturating_sub(u64::from(last) - 1);
                let board = format!(
                    "{}:{}-{}:{}",
                    windows.key(&base, "lb", current),
                    first,
                    current,
                    aggregate.name()
                );
                let sources = (first..=current)
                    .map(|index| {
                        let keys = self.keys_of(Some((windows, index)));
                        (keys.board, keys.times)
                    })
                    .collect();
                Keys {
                    times: format!("{board}:t"),
                    board,
                    sources,
                }
            }
        }
    }

    pub(super) fn keys_of(&self, period: Option<(Windows, u64)>) -> Keys {
        let base = self.base();
        let board = match period {
            None => format!("{base}:lb"),
            Some((windows, index)) => windows.key(&base, "lb", index),
        };
        Keys {
            times: format!("{board}:t"),
            board,
            sources: Vec::new(),
        }
    }

    fn base(&self) -> String {
        crate::key::name_key(self.resolved_client().namespace(), &self.settings.name)
    }
}
