//! Keywords: what a search word must equal to find a file. Words of the name plus the tags
//! the user gave, lowercased; short and duplicate words dropped; the count capped, since
//! every keyword is a DHT record to publish.

/// The most keywords one file is findable by.
pub const MAX_KEYWORDS: usize = 16;
/// The longest keyword kept.
pub const MAX_KEYWORD_BYTES: usize = 64;

/// The keywords of a file called `name` with extra `tags`.
pub fn keywords(name: &str, tags: &[String]) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in tags.iter().flat_map(|t| split(t)).chain(split(name)) {
        if !words.contains(&word) && words.len() < MAX_KEYWORDS {
            words.push(word);
        }
    }
    words
}

/// The words of a search query, normalised as keywords are.
pub fn split(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2 && w.len() <= MAX_KEYWORD_BYTES)
        .map(str::to_lowercase)
        .collect()
}

/// Whether a file with `keywords` matches every word of `query`.
pub fn matches(keywords: &[String], query: &[String]) -> bool {
    !query.is_empty() && query.iter().all(|q| keywords.contains(q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_lowercase_words() {
        let words = keywords("Holiday_Photos-2026.tar.gz", &["Beach trip".into(), "photos".into()]);
        assert_eq!(words, ["beach", "trip", "photos", "holiday", "2026", "tar", "gz"]);
        assert!(matches(&words, &split("PHOTOS beach")));
        assert!(!matches(&words, &split("photos mountain")));
        assert!(!matches(&words, &[]));
    }
}
