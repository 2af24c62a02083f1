//! The fixed set of actions and what each takes: read when a template
//! loads (an unknown action is refused before any run) and by `GET
//! /actions`.

use serde::Serialize;
use serde_json::{json, Value};

/// What `GET /actions` shows for an action.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionInfo {
    pub id: &'static str,
    pub description: &'static str,
    pub schema: Value,
    /// Runs (without side effects) in a dry run; otherwise it is skipped
    /// and its outputs are stand-ins.
    pub supports_dry_run: bool,
}

pub(crate) fn ids() -> Vec<&'static str> {
    list().into_iter().map(|a| a.id).collect()
}

pub fn describe(id: &str) -> Option<ActionInfo> {
    list().into_iter().find(|a| a.id == id)
}

pub fn list() -> Vec<ActionInfo> {
    let string = json!({"type": "string"});
    let globs = json!({"type": "array", "items": {"type": "string"}});
    vec![
        ActionInfo {
            id: "fetch:template",
            description: "Renders a skeleton directory beside the template into the workspace: file names and contents are templates over `values`.",
            schema: json!({"input": {"type": "object", "required": ["url"], "properties": {
                "url": {"type": "string", "description": "Directory relative to the template file"},
                "targetPath": {"type": "string", "description": "Where in the workspace (default .)"},
                "values": {"type": "object", "description": "`values` in the skeleton's expressions"},
                "copyWithoutTemplating": {"type": "array", "items": {"type": "string"}, "description": "Globs copied verbatim"},
                "templateFileExtension": {"type": ["boolean", "string"], "description": "Render only files with this extension (.njk when true) and strip it"}}}}),
            supports_dry_run: true,
        },
        ActionInfo {
            id: "fetch:plain",
            description: "Copies a directory or file beside the template into the workspace without rendering.",
            schema: json!({"input": {"type": "object", "required": ["url"], "properties": {"url": string, "targetPath": string}}}),
            supports_dry_run: true,
        },
        ActionInfo {
            id: "fs:rename",
            description: "Renames files or directories in the workspace.",
            schema: json!({"input": {"type": "object", "required": ["files"], "properties": {"files": {"type": "array", "items": {"type": "object", "required": ["from", "to"], "properties": {"from": string, "to": string, "overwrite": {"type": "boolean"}}}}}}}),
            supports_dry_run: true,
        },
        ActionInfo {
            id: "fs:delete",
            description: "Deletes files or directories (globs allowed) from the workspace.",
            schema: json!({"input": {"type": "object", "required": ["files"], "properties": {"files": globs}}}),
            supports_dry_run: true,
        },
        ActionInfo {
            id: "catalog:write",
            description: "Writes an entity as a catalogue descriptor file in the workspace.",
            schema: json!({"input": {"type": "object", "required": ["entity"], "properties": {"filePath": string, "entity": {"type": "object"}}}}),
            supports_dry_run: true,
        },
        ActionInfo {
            id: "plinth:policy",
            description: "Evaluates the provision policy point over the parameters and every rendered YAML/JSON document; a deny stops the run before anything is published.",
            schema: json!({"input": {"type": "object", "properties": {"profile": string, "environment": string, "parameters": {"type": "object"}, "files": globs}},
                           "output": {"type": "object", "properties": {"result": string, "decisionIds": globs, "violations": {"type": "array"}}}}),
            supports_dry_run: true,
        },
        ActionInfo {
            id: "publish:git",
            description: "Commits the workspace to a git repository with the git client: a new repository gets its first commit on the default branch; an existing one gets a new branch ready for review.",
            schema: json!({"input": {"type": "object", "required": ["repoUrl"], "properties": {
                "repoUrl": {"type": "string", "description": "A path under the server's repository root, or a git URL"},
                "defaultBranch": string, "branch": string, "sourcePath": string, "targetPath": string,
                "commitMessage": string, "gitAuthorName": string, "gitAuthorEmail": string}},
                "output": {"type": "object", "properties": {"remoteUrl": string, "repoContentsUrl": string, "commitHash": string, "branch": string, "created": {"type": "boolean"}}}}),
            supports_dry_run: false,
        },
        ActionInfo {
            id: "publish:github",
            description: "Creates a GitHub repository through the REST API (GET /users/{owner}, POST /orgs/{owner}/repos or /user/repos), pushes the workspace to its default branch with the git client, and protects that branch (PUT /repos/{owner}/{repo}/branches/{branch}/protection).",
            schema: json!({"input": {"type": "object", "required": ["repoUrl"], "properties": {
                "repoUrl": {"type": "string", "description": "github.com?owner=<owner>&repo=<name> (or a configured GitHub Enterprise host)"},
                "description": string, "homepage": string,
                "repoVisibility": {"type": "string", "enum": ["private", "internal", "public"], "description": "Default private"},
                "defaultBranch": {"type": "string", "description": "Default main"},
                "protectDefaultBranch": {"type": "boolean", "description": "Default true"},
                "requiredApprovingReviewCount": {"type": "integer", "minimum": 0, "maximum": 6},
                "requireCodeOwnerReviews": {"type": "boolean"}, "dismissStaleReviews": {"type": "boolean"},
                "enforceAdmins": {"type": "boolean", "description": "Default true"},
                "requiredStatusCheckContexts": globs,
                "sourcePath": string, "targetPath": string, "gitCommitMessage": string, "gitAuthorName": string, "gitAuthorEmail": string,
                "token": {"type": "string", "description": "A token from the run's secrets (${{ secrets.x }}); default: the integration's token"}}},
                "output": {"type": "object", "properties": {"remoteUrl": string, "repoContentsUrl": string, "commitHash": string, "created": {"type": "boolean"}}}}),
            supports_dry_run: false,
        },
        ActionInfo {
            id: "publish:gitlab",
            description: "Creates a GitLab project through the REST API (GET /namespaces/{owner}, POST /projects), pushes the workspace to its default branch with the git client, and protects that branch (POST /projects/{id}/protected_branches).",
            schema: json!({"input": {"type": "object", "required": ["repoUrl"], "properties": {
                "repoUrl": {"type": "string", "description": "gitlab.com?owner=<group or user>&repo=<name> (or a configured self-hosted GitLab)"},
                "description": string,
                "repoVisibility": {"type": "string", "enum": ["private", "internal", "public"], "description": "Default private"},
                "defaultBranch": {"type": "string", "description": "Default main"},
                "protectDefaultBranch": {"type": "boolean", "description": "Default true"},
                "sourcePath": string, "targetPath": string, "gitCommitMessage": string, "gitAuthorName": string, "gitAuthorEmail": string,
                "token": {"type": "string", "description": "A token from the run's secrets; default: the integration's token"}}},
                "output": {"type": "object", "properties": {"remoteUrl": string, "repoContentsUrl": string, "projectId": {"type": "integer"}, "commitHash": string, "created": {"type": "boolean"}}}}),
            supports_dry_run: false,
        },
        ActionInfo {
            id: "publish:github:pull-request",
            description: "Pushes the workspace to a new branch of an existing GitHub repository with the git client and opens a pull request (GET /repos/{owner}/{repo}, POST /repos/{owner}/{repo}/pulls).",
            schema: json!({"input": {"type": "object", "required": ["repoUrl", "branchName", "title"], "properties": {
                "repoUrl": string, "branchName": string, "title": string, "description": string,
                "targetBranchName": {"type": "string", "description": "Default: the repository's default branch"},
                "draft": {"type": "boolean"}, "sourcePath": string, "targetPath": string,
                "gitCommitMessage": string, "gitAuthorName": string, "gitAuthorEmail": string, "token": string}},
                "output": {"type": "object", "properties": {"remoteUrl": string, "pullRequestUrl": string, "pullRequestNumber": {"type": "integer"}, "targetBranchName": string, "branchName": string, "commitHash": string}}}),
            supports_dry_run: false,
        },
        ActionInfo {
            id: "publish:gitlab:merge-request",
            description: "Pushes the workspace to a new branch of an existing GitLab project with the git client and opens a merge request (GET /projects/{owner%2Frepo}, POST /projects/{id}/merge_requests).",
            schema: json!({"input": {"type": "object", "required": ["repoUrl", "branchName", "title"], "properties": {
                "repoUrl": string, "branchName": string, "title": string, "description": string,
                "targetBranchName": {"type": "string", "description": "Default: the project's default branch"},
                "removeSourceBranch": {"type": "boolean", "description": "Default true"}, "sourcePath": string, "targetPath": string,
                "gitCommitMessage": string, "gitAuthorName": string, "gitAuthorEmail": string, "token": string}},
                "output": {"type": "object", "properties": {"mergeRequestUrl": string, "projectid": {"type": "integer"}, "projectPath": string, "targetBranchName": string, "branchName": string, "commitHash": string}}}),
            supports_dry_run: false,
        },
        ActionInfo {
            id: "catalog:register",
            description: "Registers a catalogue file from the published repository so its entities appear at once.",
            schema: json!({"input": {"type": "object", "properties": {"catalogInfoUrl": string, "repoContentsUrl": string, "catalogInfoPath": string, "optional": {"type": "boolean"}}},
                           "output": {"type": "object", "properties": {"entityRef": string, "entityRefs": globs, "catalogInfoUrl": string}}}),
            supports_dry_run: false,
        },
        ActionInfo {
            id: "debug:log",
            description: "Writes a message (and optionally the workspace listing) to the run's log.",
            schema: json!({"input": {"type": "object", "properties": {"message": string, "listWorkspace": {"type": ["boolean", "string"]}}}}),
            supports_dry_run: true,
        },
    ]
}
