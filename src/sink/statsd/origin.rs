//! Origin detection: the fields that let the Datadog Agent tag metrics with the container they
//! came from (`|c:`), the admission controller's external data (`|e:`) and the tag cardinality
//! asked for (`|card:`).
//!
//! The container is found as the official clients find it: a container id in
//! `/proc/self/cgroup` (`ci-<id>`), else, inside a private cgroup namespace, the inode of the
//! process's cgroup directory (`in-<inode>`). `DD_ENTITY_ID` makes the Agent tag by pod instead
//! (it becomes the tag `dd.internal.entity_id`), and `DD_ORIGIN_DETECTION_ENABLED=false` turns the
//! detection off.

/// The cardinalities the Agent accepts in `|card:`.
const CARDINALITIES: [&str; 4] = ["none", "low", "orchestrator", "high"];

/// The origin fields appended to every message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Origin {
    /// `ci-<container id>` or `in-<cgroup inode>`.
    pub(crate) container: Option<String>,
    /// `DD_EXTERNAL_ENV`, sanitized.
    pub(crate) external: Option<String>,
    /// `DD_CARDINALITY` (or `DATADOG_CARDINALITY`), when valid.
    pub(crate) cardinality: Option<&'static str>,
}

impl Origin {
    /// The suffix these fields add to a message: `|c:…|e:…|card:…`.
    pub(crate) fn suffix(&self) -> String {
        let mut out = String::new();
        if let Some(container) = &self.container {
            out.push_str("|c:");
            out.push_str(container);
        }
        if let Some(external) = &self.external {
            out.push_str("|e:");
            out.push_str(external);
        }
        if let Some(cardinality) = self.cardinality {
            out.push_str("|card:");
            out.push_str(cardinality);
        }
        out
    }
}

/// Reads the origin from the environment and, when detection is on, from `/proc`.
pub(crate) fn detect(get: impl Fn(&str) -> Option<String>, detection: bool) -> Origin {
    let set = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let detection = detection
        && !set("DD_ORIGIN_DETECTION_ENABLED").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "false" | "0" | "no" | "off")
        });
    let container = if detection { local_container() } else { None };
    let external = set("DD_EXTERNAL_ENV").map(|v| sanitize_external(&v)).filter(|v| !v.is_empty());
    let cardinality = set("DD_CARDINALITY")
        .or_else(|| set("DATADOG_CARDINALITY"))
        .and_then(|v| CARDINALITIES.into_iter().find(|c| c.eq_ignore_ascii_case(&v)));
    Origin { container, external, cardinality }
}

/// Printable ASCII without `|` (which would end the field) or `\n`.
fn sanitize_external(value: &str) -> String {
    value.chars().filter(|c| c.is_ascii_graphic() && *c != '|').collect()
}

#[cfg(target_os = "linux")]
fn local_container() -> Option<String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    if let Some(id) = container_id(&cgroup) {
        return Some(format!("ci-{id}"));
    }
    cgroup_inode(&cgroup).map(|inode| format!("in-{inode}"))
}

#[cfg(not(target_os = "linux"))]
fn local_container() -> Option<String> {
    None
}

/// A container id in the cgroup paths: 64 hex digits (Docker, containerd, CRI-O, Podman), a
/// UUID, or ECS Fargate's `<32 hex>-<digits>`, possibly wrapped as `docker-<id>.scope`.
fn container_id(cgroup: &str) -> Option<String> {
    for line in cgroup.lines() {
        let path = line.splitn(3, ':').nth(2)?;
        for segment in path.rsplit('/') {
            let segment = segment.strip_suffix(".scope").unwrap_or(segment);
            let candidate = segment.rsplit(['-', ':']).next().unwrap_or(segment);
            if is_hex(candidate, 64) {
                return Some(candidate.to_owned());
            }
            if is_uuid(segment) || is_fargate(segment) {
                return Some(segment.to_owned());
            }
        }
    }
    None
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_uuid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 5 && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| is_hex(p, n))
}

fn is_fargate(text: &str) -> bool {
    text.split_once('-').is_some_and(|(hex, digits)| {
        is_hex(hex, 32) && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The inode of the process's cgroup directory, inside a private cgroup namespace only (in the
/// host's namespace the inode would name the host, not a container).
#[cfg(target_os = "linux")]
fn cgroup_inode(cgroup: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;

    /// The inode of the initial (host) cgroup namespace.
    const HOST_CGROUP_NAMESPACE: u64 = 0xEFFF_FFFB;
    let namespace = std::fs::metadata("/proc/self/ns/cgroup").ok()?.ino();
    if namespace == HOST_CGROUP_NAMESPACE {
        return None;
    }
    // cgroup v2 (`0::<path>`), else the v1 memory controller.
    let path =
        cgroup.lines().find_map(|l| l.strip_prefix("0::").map(|p| ("", p))).or_else(|| {
            cgroup.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let controllers = parts.nth(1)?;
                let path = parts.next()?;
                controllers.split(',').any(|c| c == "memory").then_some(("memory", path))
            })
        })?;
    let directory =
        std::path::Path::new("/sys/fs/cgroup").join(path.0).join(path.1.trim_start_matches('/'));
    std::fs::metadata(directory).ok().map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn container_ids_are_found_in_the_usual_layouts() {
        let cases = [
            format!("12:memory:/docker/{DOCKER}\n1:cpu:/docker/{DOCKER}"),
            format!("0::/system.slice/docker-{DOCKER}.scope"),
            format!("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{DOCKER}.scope"),
            format!("0::/kubepods/besteffort/pod1/crio-{DOCKER}"),
        ];
        for cgroup in &cases {
            assert_eq!(container_id(cgroup).as_deref(), Some(DOCKER), "{cgroup}");
        }
        let uuid = "3:cpu:/ecs/task/8e4a6cb1-2a2d-4f7e-9b5c-0c1d2e3f4a5b";
        assert_eq!(container_id(uuid).as_deref(), Some("8e4a6cb1-2a2d-4f7e-9b5c-0c1d2e3f4a5b"));
        let fargate = "1:cpu:/ecs/abc/0123456789abcdef0123456789abcdef-4278123";
        assert_eq!(
            container_id(fargate).as_deref(),
            Some("0123456789abcdef0123456789abcdef-4278123")
        );
        for none in ["0::/", "4:memory:/process_api/253e9c7d28f85a8f4fc8372d712b34ba", "garbage"] {
            assert_eq!(container_id(none), None, "{none}");
        }
    }

    #[test]
    fn the_environment_sets_external_data_and_cardinality() {
        let vars = |name: &str| match name {
            "DD_EXTERNAL_ENV" => Some("it-false,cn-app|x,pu-123\n".to_owned()),
            "DATADOG_CARDINALITY" => Some("High".to_owned()),
            _ => None,
        };
        let origin = detect(vars, false);
        assert_eq!(origin.container, None);
        assert_eq!(origin.external.as_deref(), Some("it-false,cn-appx,pu-123"));
        assert_eq!(origin.cardinality, Some("high"));
        assert_eq!(origin.suffix(), "|e:it-false,cn-appx,pu-123|card:high");
        let bad = detect(|n: &str| (n == "DD_CARDINALITY").then(|| "everything".to_owned()), false);
        assert_eq!(bad.cardinality, None);
        let off =
            detect(|n: &str| (n == "DD_ORIGIN_DETECTION_ENABLED").then(|| "false".into()), true);
        assert_eq!(off.container, None);
    }
}
