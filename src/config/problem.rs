//! Configuration problems and the source files they point into.
//!
//! A [`Problem`] is one thing wrong, with its places (file and byte span) and a hint.
//! [`Problems`] holds every problem of one load together with the files' text, and renders
//! them as miette diagnostics: `file:line:col`, the source line, labels and `help:`.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;

/// An index into [`Sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(usize);

impl FileId {
    /// The order in which the file was read.
    pub fn index(self) -> usize {
        self.0
    }
}

/// A span in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: FileId,
    pub span: Range<usize>,
}

impl Place {
    pub fn new(file: FileId, span: Range<usize>) -> Self {
        Self { file, span }
    }
}

#[derive(Debug)]
pub struct SourceFile {
    /// As shown to the user: relative to the platform directory.
    pub name: String,
    pub text: Arc<str>,
}

/// Every file one load read, so that problems can show their source lines.
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, name: String, text: String) -> FileId {
        self.files.push(SourceFile {
            name,
            text: Arc::from(text),
        });
        FileId(self.files.len() - 1)
    }

    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0]
    }

    pub fn text(&self, id: FileId) -> &str {
        &self.files[id.0].text
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_column(&self, id: FileId, offset: usize) -> (usize, usize) {
        let text = self.text(id);
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

/// A label: a place and what it says about it.
#[derive(Debug, Clone)]
pub struct Label {
    pub place: Place,
    pub text: String,
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone)]
pub struct Problem {
    pub message: String,
    /// The first label is the primary place; the others may be in other files.
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }

    pub fn at(mut self, place: Place, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            place,
            text: text.into(),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `help: did you mean `x`?` when a close candidate exists.
    pub fn suggest<'a>(self, wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match suggestion(wrong, candidates) {
            Some(close) => self.help(format!("did you mean `{close}`?")),
            None => self,
        }
    }
}

/// The candidate closest to `wrong`, if it is close enough to be a likely typo: a small
/// edit distance (transpositions count once), or a high Jaro-Winkler similarity.
pub fn suggestion<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let allowed = (wrong.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|candidate| *candidate != wrong)
        .map(|candidate| {
            let distance = strsim::damerau_levenshtein(wrong, candidate);
            let similarity = strsim::jaro_winkler(wrong, candidate);
            (distance, similarity, candidate)
        })
        .filter(|(distance, similarity, _)| *distance <= allowed || *similarity > 0.85)
        .min_by(|left, right| left.0.cmp(&right.0).then(right.1.total_cmp(&left.1)))
        .map(|(_, _, candidate)| candidate)
}

/// Every problem found in one load, with the sources to show them.
#[derive(Debug)]
pub struct Problems {
    pub sources: Arc<Sources>,
    pub problems: Vec<Problem>,
}

/// One problem, for `--output json`.
#[derive(Debug, Serialize)]
pub struct ProblemSummary {
    pub message: String,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub help: Option<String>,
    pub places: Vec<String>,
}

impl Problems {
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Each problem as a miette diagnostic, in order.
    pub fn diagnostics(&self) -> impl Iterator<Item = ProblemDiagnostic<'_>> {
        self.problems
            .iter()
            .map(|problem| ProblemDiagnostic::new(problem, &self.sources))
    }

    pub fn summaries(&self) -> Vec<ProblemSummary> {
        self.problems
            .iter()
            .map(|problem| {
                let place = |label: &Label| {
                    let (line, column) = self
                        .sources
                        .line_column(label.place.file, label.place.span.start);
                    (
                        self.sources.file(label.place.file).name.clone(),
                        line,
                        column,
                    )
                };
                let primary = problem.labels.first().map(place);
                ProblemSummary {
                    message: problem.message.clone(),
                    file: primary.as_ref().map(|(file, _, _)| file.clone()),
                    line: primary.as_ref().map(|(_, line, _)| *line),
                    column: primary.as_ref().map(|(_, _, column)| *column),
                    help: problem.help.clone(),
                    places: problem
                        .labels
                        .iter()
                        .map(|label| {
                            let (file, line, column) = place(label);
                            format!("{file}:{line}:{column}: {}", label.text)
                        })
                        .collect(),
                }
            })
            .collect()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.len() {
            1 => write!(formatter, "the configuration has 1 problem"),
            count => write!(formatter, "the configuration has {count} problems"),
        }
    }
}

impl std::error::Error for Problems {}

/// One problem as a miette diagnostic. Labels in the primary label's file render with
/// its source line; the labels in each other file become a related "also here" note.
pub struct ProblemDiagnostic<'a> {
    problem: &'a Problem,
    source: Option<NamedSource<Arc<str>>>,
    elsewhere: Vec<Elsewhere<'a>>,
}

struct Elsewhere<'a> {
    labels: Vec<&'a Label>,
    source: NamedSource<Arc<str>>,
}

fn named_source(sources: &Sources, file: FileId) -> NamedSource<Arc<str>> {
    let source = sources.file(file);
    NamedSource::new(&source.name, Arc::clone(&source.text)).with_language("toml")
}

fn labeled_spans(labels: &[&Label], primary: bool) -> Box<dyn Iterator<Item = LabeledSpan>> {
    let spans: Vec<LabeledSpan> = labels
        .iter()
        .enumerate()
        .map(|(position, label)| {
            let span = label.place.span.clone();
            if position == 0 && primary {
                LabeledSpan::new_primary_with_span(Some(label.text.clone()), span)
            } else {
                LabeledSpan::new_with_span(Some(label.text.clone()), span)
            }
        })
        .collect();
    Box::new(spans.into_iter())
}

impl<'a> ProblemDiagnostic<'a> {
    fn new(problem: &'a Problem, sources: &Sources) -> Self {
        let primary = problem.labels.first().map(|label| label.place.file);
        let mut other_files: Vec<FileId> = Vec::new();
        for label in &problem.labels {
            if Some(label.place.file) != primary && !other_files.contains(&label.place.file) {
                other_files.push(label.place.file);
            }
        }
        let elsewhere = other_files
            .into_iter()
            .map(|file| Elsewhere {
                labels: problem
                    .labels
                    .iter()
                    .filter(|label| label.place.file == file)
                    .collect(),
                source: named_source(sources, file),
            })
            .collect();
        Self {
            problem,
            source: primary.map(|file| named_source(sources, file)),
            elsewhere,
        }
    }

    fn primary_labels(&self) -> Vec<&'a Label> {
        let Some(first) = self.problem.labels.first() else {
            return Vec::new();
        };
        self.problem
            .labels
            .iter()
            .filter(|label| label.place.file == first.place.file)
            .collect()
    }
}

impl fmt::Debug for ProblemDiagnostic<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.problem.message)
    }
}

impl fmt::Display for ProblemDiagnostic<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.problem.message)
    }
}

impl std::error::Error for ProblemDiagnostic<'_> {}

impl Diagnostic for ProblemDiagnostic<'_> {
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.problem
            .help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|source| source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        Some(labeled_spans(&self.primary_labels(), true))
    }

    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn Diagnostic> + 'b>> {
        if self.elsewhere.is_empty() {
            return None;
        }
        Some(Box::new(
            self.elsewhere
                .iter()
                .map(|diagnostic| diagnostic as &dyn Diagnostic),
        ))
    }
}

impl fmt::Debug for Elsewhere<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("also here")
    }
}

impl fmt::Display for Elsewhere<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("also here")
    }
}

impl std::error::Error for Elsewhere<'_> {}

impl Diagnostic for Elsewhere<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Advice)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(labeled_spans(&self.labels, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let mut sources = Sources::default();
        let file = sources.add("a.toml".into(), "ab\ncdé\nf".into());
        assert_eq!(sources.line_column(file, 0), (1, 1));
        assert_eq!(sources.line_column(file, 4), (2, 2));
        assert_eq!(sources.line_column(file, 8), (3, 1));
    }

    #[test]
    fn suggests_only_close_names() {
        let names = ["postgres", "redis", "brain-ai"];
        assert_eq!(suggestion("postgre", names), Some("postgres"));
        assert_eq!(suggestion("brainai", names), Some("brain-ai"));
        assert_eq!(suggestion("wbe", ["web", "api"]), Some("web"));
        assert_eq!(suggestion("elasticsearch", names), None);
        assert_eq!(suggestion("x", names), None);
    }
}
