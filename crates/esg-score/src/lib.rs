//! Rubric, retrieval and scoring (work in progress).
