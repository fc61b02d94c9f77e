//! Interactions and the sparse user × item matrix every recommender trains on.

use std::collections::HashMap;

/// One observed interaction: who (dense index), with what item (dense index), how strongly,
/// and when (ms since the epoch; used only to split for evaluation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    /// Dense user index.
    pub user: u32,
    /// Dense item index.
    pub item: u32,
    /// Strength (an event weight, a rating); summed when a pair repeats.
    pub weight: f32,
    /// When it happened.
    pub at: i64,
}

/// Maps outside ids (profile ids, product ids) to dense indices and back, in first-seen
/// order, so matrices stay compact and results name real ids.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vocabulary {
    ids: Vec<String>,
    index: HashMap<String, u32>,
}

impl Vocabulary {
    /// The index of `id`, adding it if new.
    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(id.to_owned());
        self.index.insert(id.to_owned(), i);
        i
    }

    /// The index of `id`, if known.
    pub fn get(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The id at `index`.
    pub fn id(&self, index: u32) -> Option<&str> {
        self.ids.get(index as usize).map(String::as_str)
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Every id, by index.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Builds from ids in index order (as stored with a model).
    pub fn from_ids(ids: Vec<String>) -> Self {
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
        Vocabulary { ids, index }
    }
}

/// Compressed sparse rows: for each row, its column indices (ascending) and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Sparse {
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
    cols: usize,
}

impl Sparse {
    /// Builds a `rows` × `cols` matrix from (row, col, value) triples, summing repeats.
    /// Triples outside the shape are ignored.
    pub fn from_triples(
        rows: usize,
        cols: usize,
        triples: impl IntoIterator<Item = (u32, u32, f32)>,
    ) -> Self {
        let mut t: Vec<(u32, u32, f32)> = triples
            .into_iter()
            .filter(|&(r, c, v)| (r as usize) < rows && (c as usize) < cols && v.is_finite())
            .collect();
        t.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut indptr = vec![0usize; rows + 1];
        let mut indices = Vec::with_capacity(t.len());
        let mut values: Vec<f32> = Vec::with_capacity(t.len());
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in t {
            if last == Some((r, c)) {
                if let Some(x) = values.last_mut() {
                    *x += v;
                }
                continue;
            }
            last = Some((r, c));
            indices.push(c);
            values.push(v);
            indptr[r as usize + 1] += 1;
        }
        for r in 0..rows {
            indptr[r + 1] += indptr[r];
        }
        Sparse {
            indptr,
            indices,
            values,
            cols,
        }
    }

    /// The user × item matrix of `interactions`.
    pub fn of(interactions: &[Interaction], users: usize, items: usize) -> Self {
        Sparse::from_triples(
            users,
            items,
            interactions.iter().map(|i| (i.user, i.item, i.weight)),
        )
    }

    /// Row `r`: column indices and values.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        match (self.indptr.get(r), self.indptr.get(r + 1)) {
            (Some(&a), Some(&b)) => (&self.indices[a..b], &self.values[a..b]),
            _ => (&[], &[]),
        }
    }

    /// Row `r` as (column, value) pairs.
    pub fn row_pairs(&self, r: usize) -> Vec<(u32, f32)> {
        let (c, v) = self.row(r);
        c.iter().copied().zip(v.iter().copied()).collect()
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The same matrix with every value multiplied by `k`.
    pub fn scaled(&self, k: f32) -> Self {
        let mut s = self.clone();
        s.values.iter_mut().for_each(|v| *v *= k);
        s
    }

    /// The transpose (item × user from user × item).
    pub fn transpose(&self) -> Self {
        let mut counts = vec![0usize; self.cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for c in 0..self.cols {
            counts[c + 1] += counts[c];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        for r in 0..self.rows() {
            let (cs, vs) = self.row(r);
            for (&c, &v) in cs.iter().zip(vs) {
                let at = next[c as usize];
                indices[at] = r as u32;
                values[at] = v;
                next[c as usize] += 1;
            }
        }
        Sparse {
            indptr,
            indices,
            values,
            cols: self.rows(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_repeats_sorts_columns_and_transposes() {
        let m = Sparse::from_triples(
            3,
            4,
            [
                (2, 1, 1.0),
                (0, 3, 2.0),
                (0, 1, 1.0),
                (0, 3, 0.5),
                (9, 0, 1.0),
            ],
        );
        assert_eq!(m.row(0), (&[1u32, 3][..], &[1.0f32, 2.5][..]));
        assert_eq!(m.row(1), (&[][..], &[][..]));
        assert_eq!(m.nnz(), 3);
        let t = m.transpose();
        assert_eq!((t.rows(), t.cols()), (4, 3));
        assert_eq!(t.row(1), (&[0u32, 2][..], &[1.0f32, 1.0][..]));
        assert_eq!(t.transpose(), m);
    }

    #[test]
    fn vocabulary_round_trips() {
        let mut v = Vocabulary::default();
        assert_eq!(v.intern("a"), 0);
        assert_eq!(v.intern("b"), 1);
        assert_eq!(v.intern("a"), 0);
        assert_eq!(v.id(1), Some("b"));
        assert_eq!(Vocabulary::from_ids(v.ids().to_vec()), v);
    }
}
