//! Release notes: where a version's changes are told, so that whoever approves or reads about
//! an upgrade can read what it brings. A profile names where its vendor publishes them (a URL
//! template over the version, with its source); any image may name its pages in its OCI labels
//! (see [`OciLabels`]). `check`, the plan of an upgrade and the messages of a pass show them for
//! every hop: [`Profile::release_notes`] first, else [`from_labels`] of the hop's image.

use serde::{Deserialize, Serialize};

use super::steps::When;
use super::Profile;
use crate::engine::OciLabels;
use crate::template;
use crate::version::TagVersion;

/// The variables a release notes URL may name, each from the version it tells.
const VARIABLES: [&str; 5] = ["TAG", "VERSION", "MAJOR", "MINOR", "PATCH"];

/// One place a vendor publishes release notes, for the hops `when` bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseNotes {
    /// The page, `${VAR}` filled in from the version it tells: `${TAG}` as the image's tag
    /// (`v3.10.0`), `${VERSION}` without a leading `v` (`3.10.0`), `${MAJOR}`, `${MINOR}`,
    /// `${PATCH}` its numbers (0 when the tag has fewer).
    pub url: String,
    #[serde(default, skip_serializing_if = "When::is_always")]
    pub when: When,
}

/// Where to read what a version changed: a page, the version it tells, and who says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotesLink {
    /// The tag (or, from a label, the version) whose release the page tells.
    pub version: String,
    pub url: String,
    /// Who names the page: `profile NAME (its source)`, or the image's label.
    pub from: String,
}

impl NotesLink {
    /// The link as a line of a plan or a message.
    pub fn line(&self) -> String {
        format!(
            "release notes of {}: {} ({})",
            self.version, self.url, self.from
        )
    }
}

impl ReleaseNotes {
    /// The URL for the version `tag`, when it is a version and the URL's template fills in.
    fn url_for(&self, tag: &str) -> Option<String> {
        let version = TagVersion::parse(tag)?;
        let number = |i: usize| version.numbers.get(i).copied().unwrap_or(0).to_string();
        let env = [
            format!("TAG={tag}"),
            format!("VERSION={}", tag.trim_start_matches(['v', 'V'])),
            format!("MAJOR={}", number(0)),
            format!("MINOR={}", number(1)),
            format!("PATCH={}", number(2)),
        ];
        template::expand(&self.url, &env).ok()
    }

    /// What serde cannot check: an http(s) URL naming only the known variables, sane bounds.
    pub(super) fn check(&self) -> Result<(), String> {
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Err(format!(
                "{:?}: a release notes URL is a web page (https://...)",
                self.url
            ));
        }
        if let Some(unknown) = template::names(&self.url)
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|n| !VARIABLES.contains(n))
        {
            return Err(format!(
                "{:?}: ${{{unknown}}} is none of {}",
                self.url,
                VARIABLES.map(|v| format!("${{{v}}}")).join(", ")
            ));
        }
        self.when.check()
    }
}

impl Profile {
    /// The release notes of the hop from `from` to `to` (tags) its vendor publishes, as this
    /// profile says: each of its `release_notes` whose bounds hold, for `to`. A version it
    /// cannot judge gets none.
    pub fn release_notes(&self, from: &str, to: &str) -> Vec<NotesLink> {
        let source = self
            .sources
            .get("release_notes")
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        self.release_notes
            .iter()
            .filter(|notes| notes.when.holds(from, to).unwrap_or(false))
            .filter_map(|notes| notes.url_for(to))
            .map(|url| NotesLink {
                version: to.to_string(),
                url,
                from: format!("profile {}{source}", self.name),
            })
            .collect()
    }
}

/// The pages an image's OCI labels name (see [`OciLabels::pages`]) as release notes of
/// `version`; `whose` says which image they were read on (`"v1.3.0's image"`, `"the running
/// image"`: another version's labels name the project's pages, not this version's).
pub fn from_labels(version: &str, labels: &OciLabels, whose: &str) -> Vec<NotesLink> {
    labels
        .pages()
        .into_iter()
        .map(|(key, url)| NotesLink {
            version: version.to_string(),
            url: url.to_string(),
            from: format!("label {key} of {whose}"),
        })
        .collect()
}

/// The version an image's labels tell (`org.opencontainers.image.version`), else its tag.
pub fn labelled_version(tag: &str, labels: &OciLabels) -> String {
    labels.version.clone().unwrap_or_else(|| tag.to_string())
}

/// The tags of a move from `current` through `via` to `target`, as hops: `(from, to)` pairs.
pub fn pairs<'a>(current: &'a str, via: &'a [String], target: &'a str) -> Vec<(&'a str, &'a str)> {
    let tags: Vec<&str> = std::iter::once(current)
        .chain(via.iter().map(String::as_str))
        .chain(std::iter::once(target))
        .collect();
    tags.windows(2).map(|w| (w[0], w[1])).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn profile(release_notes: &str) -> Profile {
        let text = format!(
            "name: demo\ndescription: d\nmatch: [example/demo]\nrelease_notes:\n{release_notes}sources:\n  release_notes: \"the vendor's docs\"\n"
        );
        Profile::parse(&text, "demo.yaml").unwrap()
    }

    #[test]
    fn a_profile_s_template_gives_each_hop_its_link_within_its_bounds() {
        let p = profile(
            "  - url: \"https://docs.example.com/${MAJOR}.${MINOR}/notes#${VERSION}\"\n  - url: \"https://example.com/upgrade-${MAJOR}\"\n    when: { crossing: \"3.0.0\" }\n",
        );
        let links = p.release_notes("v2.9.1", "v3.1.0");
        assert_eq!(
            links.iter().map(|l| l.url.as_str()).collect::<Vec<_>>(),
            [
                "https://docs.example.com/3.1/notes#3.1.0",
                "https://example.com/upgrade-3"
            ]
        );
        assert_eq!(links[0].version, "v3.1.0");
        assert_eq!(links[0].from, "profile demo (the vendor's docs)");
        assert_eq!(
            links[0].line(),
            "release notes of v3.1.0: https://docs.example.com/3.1/notes#3.1.0 (profile demo (the vendor's docs))"
        );
        let within = p.release_notes("v3.1.0", "v3.2");
        assert_eq!(within.len(), 1, "the upgrade page only when crossing 3.0");
        assert_eq!(within[0].url, "https://docs.example.com/3.2/notes#3.2");
        assert!(
            p.release_notes("latest", "latest").is_empty(),
            "no version, no link"
        );
    }

    #[test]
    fn a_template_naming_something_else_is_refused_where_it_stands() {
        for (notes, says) in [
            (
                "  - url: \"https://x/${BUILD}\"\n",
                "${BUILD} is none of ${TAG}",
            ),
            ("  - url: \"ftp://x/${TAG}\"\n", "a web page"),
            ("  - url: \"https://x/${TAG\"\n", "unclosed"),
            (
                "  - url: \"https://x\"\n    when: { to: \"soon\" }\n",
                "soon",
            ),
        ] {
            let text = format!("name: demo\ndescription: d\nmatch: [example/demo]\nrelease_notes:\n{notes}sources:\n  release_notes: docs\n");
            let e = Profile::parse(&text, "demo.yaml").unwrap_err().to_string();
            assert!(
                e.starts_with("demo.yaml:") && e.contains(says),
                "{notes}: {e}"
            );
        }
    }

    #[test]
    fn an_image_s_labels_give_their_pages_for_their_version() {
        let labels = HashMap::from([
            (
                OciLabels::DOCUMENTATION.to_string(),
                "https://docs.example.com".to_string(),
            ),
            (OciLabels::VERSION.to_string(), "2.1.0".to_string()),
        ]);
        let oci = OciLabels::read(&labels);
        assert_eq!(labelled_version("2.1", &oci), "2.1.0");
        let links = from_labels("2.1.0", &oci, "2.1's image");
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].url, "https://docs.example.com");
        assert_eq!(
            links[0].from,
            "label org.opencontainers.image.documentation of 2.1's image"
        );
        let unversioned = OciLabels::read(&HashMap::from([(
            OciLabels::SOURCE.to_string(),
            "https://github.com/example/app".to_string(),
        )]));
        assert_eq!(labelled_version("2.1", &unversioned), "2.1");
        assert!(from_labels("2.1", &OciLabels::default(), "x").is_empty());
    }

    #[test]
    fn a_move_is_its_pairs_of_tags() {
        let via = ["v3.9.0".to_string(), "v3.10.0".to_string()];
        assert_eq!(
            pairs("v3.8.0", &via, "v3.11.0"),
            [
                ("v3.8.0", "v3.9.0"),
                ("v3.9.0", "v3.10.0"),
                ("v3.10.0", "v3.11.0")
            ]
        );
        assert_eq!(pairs("1", &[], "2"), [("1", "2")]);
    }
}
