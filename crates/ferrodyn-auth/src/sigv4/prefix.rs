//! Hashing a text that begins as the previous one did, from the state already computed.
//!
//! SHA-256 consumes its input in 64-byte blocks, in order, so the state after the leading blocks
//! of a text depends on those blocks alone. The texts verification hashes often share leading
//! blocks with the text before them: a client's canonical requests begin with the same method,
//! path and first signed headers (`content-type`, `host`, and within one second `x-amz-date`),
//! and every string to sign of one second and scope begins with the same 64 bytes. A
//! [`PrefixMemo`] keeps the leading blocks of the last text hashed and the state after each, so
//! a text whose leading blocks are equal starts from the remembered state instead of hashing
//! them again.
//!
//! Invariants:
//! - a remembered state is used only when every block before it equals, byte for byte, the
//!   block it was computed from, and the state they were hashed from (the origin: SHA-256's
//!   initial state, or an HMAC keyed with a given signing key) is the same: the result is the
//!   state a plain hash would reach, always;
//! - one call remembers at most one more block, so texts that never share a prefix (an SDK that
//!   signs a per-request invocation id first) pay for one copy, not one per block;
//! - nothing here is secret beyond what the signing-key cache already holds: the texts are the
//!   canonical request and string to sign, and an HMAC origin is named by its signing key.

use sha2::digest::Update;

/// How many leading blocks are remembered at most.
pub(crate) const MAX_BLOCKS: usize = 8;

const BLOCK: usize = 64;

/// The leading blocks of the last text hashed from one origin, and the state after each.
pub(crate) struct PrefixMemo<S> {
    /// Names the state the remembered blocks were hashed from.
    origin: [u8; 32],
    blocks: Vec<[u8; BLOCK]>,
    states: Vec<S>,
}

impl<S> Default for PrefixMemo<S> {
    fn default() -> Self {
        PrefixMemo {
            origin: [0; 32],
            blocks: Vec::new(),
            states: Vec::new(),
        }
    }
}

impl<S: Update + Clone> PrefixMemo<S> {
    /// The state after absorbing `text` into `initial` (which `origin` names), the leading
    /// blocks it shares with the last text taken from the memo. Not finalized.
    pub(crate) fn absorb(&mut self, origin: &[u8; 32], initial: &S, text: &[u8]) -> S {
        if self.origin != *origin {
            self.origin = *origin;
            self.blocks.clear();
            self.states.clear();
        }
        let full = (text.len() / BLOCK).min(MAX_BLOCKS);
        let leading = text.chunks_exact(BLOCK).take(full);
        let matched = self
            .blocks
            .iter()
            .zip(leading)
            .take_while(|(kept, block)| kept[..] == block[..])
            .count();
        let mut state = match matched {
            0 => initial.clone(),
            n => self.states[n - 1].clone(),
        };
        let mut at = matched * BLOCK;
        if matched < full {
            // One block more: either the memo grows (every kept block matched) or it forgets
            // what followed the first block that differed.
            let block = &text[at..at + BLOCK];
            state.update(block);
            at += BLOCK;
            self.blocks.truncate(matched);
            self.states.truncate(matched);
            let mut kept = [0u8; BLOCK];
            kept.copy_from_slice(block);
            self.blocks.push(kept);
            self.states.push(state.clone());
        }
        state.update(&text[at..]);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Mac;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    type HmacSha256 = hmac::Hmac<Sha256>;

    fn plain(text: &[u8]) -> [u8; 32] {
        Sha256::digest(text).into()
    }

    fn memo_hash(memo: &mut PrefixMemo<Sha256>, text: &[u8]) -> [u8; 32] {
        memo.absorb(&[0; 32], &Sha256::new(), text)
            .finalize()
            .into()
    }

    #[test]
    fn texts_sharing_blocks_hash_as_plain_ones() {
        let mut memo = PrefixMemo::default();
        let base: Vec<u8> = (0..700u32).map(|i| (i * 7 % 251) as u8).collect();
        // Grows one block per call while the prefix holds, then diverges in the middle.
        for round in 0..12 {
            let mut text = base.clone();
            if round >= 9 {
                text[200] ^= 1;
            }
            assert_eq!(memo_hash(&mut memo, &text), plain(&text), "round {round}");
        }
        assert_eq!(memo_hash(&mut memo, &base[..64]), plain(&base[..64]));
        assert_eq!(memo_hash(&mut memo, &base[..63]), plain(&base[..63]));
        assert_eq!(memo_hash(&mut memo, b""), plain(b""));
        assert!(memo.blocks.len() <= MAX_BLOCKS);
    }

    #[test]
    fn an_other_origin_never_meets_remembered_states() {
        let text = [b'a'; 200];
        let mut memo = PrefixMemo::default();
        for key in [[1u8; 32], [1; 32], [2; 32], [2; 32], [1; 32]] {
            let keyed = HmacSha256::new_from_slice(&key).unwrap();
            let got = memo.absorb(&key, &keyed, &text).finalize().into_bytes();
            let mut want = HmacSha256::new_from_slice(&key).unwrap();
            Mac::update(&mut want, &text);
            assert_eq!(got, want.finalize().into_bytes());
        }
    }

    proptest! {
        /// Any sequence of texts (built to share prefixes often) hashes as plain SHA-256 does.
        #[test]
        fn memo_never_changes_a_hash(
            base in proptest::collection::vec(any::<u8>(), 0..600),
            edits in proptest::collection::vec((0usize..600, any::<u8>(), 0usize..600), 1..12),
        ) {
            let mut memo = PrefixMemo::default();
            for (at, byte, cut) in edits {
                let mut text = base.clone();
                if let Some(b) = text.get_mut(at) {
                    *b = byte;
                }
                text.truncate(cut.max(text.len() / 2));
                prop_assert_eq!(memo_hash(&mut memo, &text), plain(&text));
            }
        }
    }
}
