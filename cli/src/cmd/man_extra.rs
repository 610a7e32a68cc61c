//! The sections of the man pages that clap's definitions do not carry: more DESCRIPTION, EXIT
//! STATUS, the JSON a command prints with `--format json`, and EXAMPLES. `generate-man` puts
//! them into each page before its VERSION section.

/// What a page adds to clap's text.
#[derive(Default)]
pub struct Extra {
    /// Paragraphs appended to DESCRIPTION.
    pub description: &'static [&'static str],
    /// Statuses besides 0, 1 and 2 (which every command has).
    pub exit: &'static [(u8, &'static str)],
    /// The document `--format json` prints, as an example.
    pub json: Option<&'static str>,
    /// (what it does, the command line).
    pub examples: &'static [(&'static str, &'static str)],
}

pub fn extra(page: &str) -> Extra {
    match page {
        "tfctl-systemd" => Extra {
            description: &[
                "The unit is Type=notify: its main process is the app's supervisor (tfctl up in the foreground), which says READY=1 once every container is ready as up --wait means it (healthy, or running without a health check; one-shots exited 0), STATUS= lines as containers start, exit and fail (systemctl status shows the last), STOPPING=1 when it stops the app, and WATCHDOG=1 from its event loop every WatchdogSec/2 (the unit sets WatchdogSec=1min: a supervisor that stops answering is restarted). NotifyAccess=main: no container or hook can speak for it.",
                "The unit runs the tfctl that writes it (the installed one, when run from there), or --tfctl PATH; a binary inside a cargo target folder is refused unless --tfctl names it. The app file, the state root and the host config are written as absolute paths. Its cgroup is delegated (Delegate=yes): the containers' cgroups go below it, so systemctl stop leaves no process and no cgroup.",
                "ENVIRONMENT. A unit starts with none of the shell's variables. The variables the app file takes from the environment (${VAR}, ${VAR:?message}; not those its .env file sets) and its from-env secrets are named in the unit and read from EnvironmentFile=/etc/tfctl/UNIT.env. --install writes that file (mode 0600, root's) from the current environment when it does not exist, and warns about the variables that are not set; it never replaces one.",
                "CREDENTIALS. To keep a secret out of the environment, make it a from-file secret read through systemd's credentials folder: secret \"db\" from-file=\"${CREDENTIALS_DIRECTORY:-/etc/credstore}/db\". tfctl check and tfctl up in a shell read /etc/credstore/db; the unit gets LoadCredential=db:/etc/credstore/db, and systemd hands the file to the unit's processes only.",
                "SANDBOX. The unit is sandboxed as far as tfctl can still do its job, decided by what the app file asks for, and each setting that stays open is explained in the unit's comments. systemd-analyze security rates it 4.9 for an app without user namespaces (the unit tfctl wrote before: 9.6). The host is read-only (ProtectSystem=strict) but for the state root, /run/tfctl and the app's writable bind mounts; homes are read-only; /tmp is private unless the app uses a path there; /proc/sys is read-only but for net/ and the app's IPC sysctls; kernel modules, logs and the clock are off limits; the capability bounding set is tfctl's own (SYS_ADMIN, NET_ADMIN, MKNOD, CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, SETFCAP, SETUID, SETGID, SETPCAP, KILL, SYS_PTRACE, SYS_RESOURCE, NET_BIND_SERVICE, SYS_CHROOT) and the containers'; devices are those of a container's /dev.",
                "What an app asks for opens the sandbox further: a userns \"auto\" container drops ProtectKernelTunables=, ProtectKernelLogs= and RestrictNamespaces=~user (the kernel refuses a user namespace its own /proc while the host's has files mounted over; the unit then rates 5.5); cap-add SYS_PTRACE keeps the @debug system calls, NET_RAW packet sockets, SYS_ADMIN user namespaces. Generate the unit again when the app file changes what it asks of the host. Host hooks run in the same sandbox: one that writes elsewhere needs ReadWritePaths= in a drop-in (systemctl edit).",
            ],
            exit: &[],
            json: None,
            examples: &[
                ("Look at the unit for an app", "tfctl systemd /srv/shop/shop.kdl"),
                ("Install it, start it and wait until the app is ready", "tfctl systemd --install --now /srv/shop/shop.kdl"),
                ("Check its sandbox", "systemd-analyze security tfctl-shop.service"),
                ("Stop the app: nothing of it is left", "systemctl stop tfctl-shop.service"),
            ],
        },
        "tfctl-up" => Extra {
            exit: &[(3, "a container failed, became unhealthy, or a one-shot exited non-zero during --wait (or --abort-on-failure stopped the app)"), (4, "--wait's timeout passed"), (130, "interrupted")],
            examples: &[
                ("Run an app in the foreground; Ctrl-C stops it", "tfctl up samples/web.kdl"),
                ("Start it detached and wait until it is ready", "tfctl up --wait samples/three-tier.kdl"),
                ("Run the same file a second time under another name", "tfctl up -d --name web2 samples/web.kdl"),
                ("Run it as a systemd service instead", "tfctl systemd --install --now samples/web.kdl"),
            ],
            ..Extra::default()
        },
        "tfctl-down" => Extra {
            examples: &[("Stop an app and remove its containers, network and firewall rules", "tfctl down three-tier")],
            ..Extra::default()
        },
        "tfctl-check" => Extra {
            examples: &[("Validate an app file before up", "tfctl check samples/three-tier.kdl")],
            ..Extra::default()
        },
        "tfctl-config" => Extra {
            json: Some(r#"{ "schema": 1, "app": { "name": "web", "file": "/srv/web/web.kdl", "dir": "/srv/web", "subnet": null, "egress": "allow", "secrets": [], "volumes": [], "containers": [ { "name": "web", "image": "oci:/srv/web/images/busybox", ... } ], "hooks": [] } }"#),
            examples: &[("The app as tfctl reads it, variables expanded", "tfctl config samples/web.kdl"), ("The same as JSON", "tfctl --format json config samples/web.kdl")],
            ..Extra::default()
        },
        "tfctl-ps" => Extra {
            json: Some(
                r#"{ "schema": 1, "apps": [ { "name": "web", "supervisor": { "pid": 4242 }, "containers": [ { "name": "web", "address": "10.89.0.2", "state": "running", "health": "healthy", "restarts": 0, "reason": null, "uptime_seconds": 12, "ports": [ ... ], "added_at_run_time": false } ] } ] }
(a one-off container of tfctl run is an app with "one_off": true, "supervisor": null, and "exit_code" and "image" for its container)"#,
            ),
            examples: &[("Every app and its containers", "tfctl ps"), ("One app, for a script", "tfctl --format json ps web")],
            ..Extra::default()
        },
        "tfctl-plan" => Extra {
            exit: &[(5, "--detailed-exitcode: up would change something")],
            json: Some(r#"{ "schema": 1, "app": "web", "changes": [ ... ], "app_level": [ ... ], "changed": true, "note": null }"#),
            examples: &[("What up would change of a running app", "tfctl plan samples/web.kdl"), ("In CI: exit 5 when something would change", "tfctl plan --detailed-exitcode samples/web.kdl")],
            ..Extra::default()
        },
        "tfctl-images-ls" => Extra {
            json: Some(r#"{ "schema": 1, "images": [ { "name": "docker.io/library/busybox:latest", "digest": "sha256:...", "size": 2156789, "layers": 1 } ] }"#),
            examples: &[("The stored images", "tfctl images ls")],
            ..Extra::default()
        },
        "tfctl-images-prune" => Extra {
            json: Some(r#"{ "schema": 1, "removed": [ "..." ], "blobs": 3, "layers": 2, "bytes": 1048576 }"#),
            examples: &[("Remove what no image and no container uses", "tfctl images prune")],
            ..Extra::default()
        },
        "tfctl-port" => Extra {
            json: Some(r#"{ "schema": 1, "ports": [ ... ] }"#),
            examples: &[("The host ports of an app's containers", "tfctl port web")],
            ..Extra::default()
        },
        "tfctl-volumes-ls" => Extra {
            json: Some(r#"{ "schema": 1, "volumes": [ ... ] }"#),
            examples: &[("Every app's named volumes", "tfctl volumes ls")],
            ..Extra::default()
        },
        "tfctl-info" => Extra {
            json: Some(r#"{ "schema": 1, "kernel": { "release": "6.1.0-50-amd64", ... }, "root": true, "features": [ { "name": "...", ... } ], "missing": [], ... }"#),
            examples: &[("What this host gives tfctl", "tfctl info")],
            ..Extra::default()
        },
        "tfctl-run" | "tfctl-exec" => Extra {
            exit: &[(125, "tfctl's own failure after the arguments were accepted"), (126, "the command cannot be executed"), (127, "the command was not found"), (128, "128+N: the container's process was killed by signal N; otherwise its own status")],
            examples: if page == "tfctl-run" {
                &[("A one-off container, removed when it exits", "tfctl run --rm oci:samples/images/busybox echo hello")]
            } else {
                &[("A shell in a running container", "tfctl exec -it web/web sh")]
            },
            ..Extra::default()
        },
        "tfctl-completions" => Extra { examples: &[("Completions for the current bash", "source <(tfctl completions bash)"), ("Install zsh's", "tfctl completions zsh > /usr/local/share/zsh/site-functions/_tfctl")], ..Extra::default() },
        "tfctl-convert" => Extra { examples: &[("Convert the compose.yaml of this folder", "tfctl convert -o app.kdl"), ("Merge a base and an override as docker compose -f a -f b does", "tfctl convert -f compose.yaml -f compose.prod.yaml -o app.kdl"), ("Fail on anything that has no equivalent", "tfctl convert --strict compose.yaml")], ..Extra::default() },
        "tfctl-cp" => Extra { examples: &[("Copy a file out of a running container", "tfctl cp shop/db:/var/log/postgresql/main.log ./main.log"), ("Copy a folder in, keeping owners and modes", "tfctl cp -a ./conf shop/web:/etc/app")], ..Extra::default() },
        "tfctl-events" => Extra { examples: &[("What happened to an app in the last hour", "tfctl events --since 1h shop"), ("Follow one container's events as JSON lines", "tfctl --format json events --follow shop/db")], ..Extra::default() },
        "tfctl-export-kubernetes" => Extra { examples: &[("Write one manifest per object into a folder", "tfctl export kubernetes -o k8s/ shop.kdl"), ("Apply them to a namespace", "tfctl export kubernetes --namespace shop -o - shop.kdl | kubectl apply -f -")], ..Extra::default() },
        "tfctl-export" => Extra { examples: &[("A running container's root filesystem as a tar archive", "tfctl export shop/web > web.tar")], ..Extra::default() },
        "tfctl-images-inspect" => Extra { examples: &[("An image's config", "tfctl images inspect busybox:1.36")], ..Extra::default() },
        "tfctl-images-rm" => Extra { examples: &[("Remove a stored image", "tfctl images rm busybox:1.36")], ..Extra::default() },
        "tfctl-images" => Extra { examples: &[("List stored images", "tfctl images"), ("Remove what nothing uses", "tfctl images prune")], ..Extra::default() },
        "tfctl-inspect" => Extra { examples: &[("A container as the kernel sees it", "tfctl inspect shop/db"), ("Its effective capabilities", "tfctl --format json inspect shop/db | jq .process.capabilities.effective")], ..Extra::default() },
        "tfctl-kill" => Extra { examples: &[("Send SIGKILL to a container", "tfctl kill shop/web"), ("Ask nginx to reopen its logs", "tfctl kill -s SIGUSR1 shop/web")], ..Extra::default() },
        "tfctl-login" => Extra { examples: &[("Log in to a registry, the password from standard input", "tfctl login -u ci --password-stdin registry.example.com < token")], ..Extra::default() },
        "tfctl-logout" => Extra { examples: &[("Forget a registry's credentials", "tfctl logout registry.example.com")], ..Extra::default() },
        "tfctl-logs" => Extra { examples: &[("Follow a container's output", "tfctl logs -f shop/web"), ("Every container of an app, and its hooks' output", "tfctl logs shop")], ..Extra::default() },
        "tfctl-pull" => Extra { examples: &[("Pull every image an app file names", "tfctl pull shop.kdl"), ("Pull one image", "tfctl pull busybox:1.36")], ..Extra::default() },
        "tfctl-restart" => Extra { examples: &[("Restart a container", "tfctl restart shop/api"), ("Restart it from its image, dropping what it wrote", "tfctl restart --reset shop/api")], ..Extra::default() },
        "tfctl-rm" => Extra { examples: &[("Remove a stopped container", "tfctl rm shop/worker")], ..Extra::default() },
        "tfctl-start" => Extra { examples: &[("Start a stopped container", "tfctl start shop/api")], ..Extra::default() },
        "tfctl-stats" => Extra { examples: &[("Live resource usage of an app's containers", "tfctl stats shop"), ("One sample as JSON", "tfctl --format json stats --no-stream shop")], ..Extra::default() },
        "tfctl-stop" => Extra { examples: &[("Stop a container within its stop timeout", "tfctl stop shop/api")], ..Extra::default() },
        "tfctl-top" => Extra { examples: &[("The processes of a container", "tfctl top shop/db")], ..Extra::default() },
        "tfctl-version" => Extra { examples: &[("The version as JSON", "tfctl --format json version")], ..Extra::default() },
        "tfctl-volumes-inspect" => Extra { examples: &[("A volume's details", "tfctl volumes inspect shop-data")], ..Extra::default() },
        "tfctl-volumes-rm" => Extra { examples: &[("Remove a volume no container uses", "tfctl volumes rm shop-data")], ..Extra::default() },
        "tfctl-volumes" => Extra { examples: &[("List volumes", "tfctl volumes ls")], ..Extra::default() },
        "tfctl-oci" => Extra { examples: &[("Let Docker run containers with tfctl", "printf '#!/bin/sh\\nexec tfctl oci \"$@\"\\n' > /usr/local/bin/tfctl-oci; chmod +x /usr/local/bin/tfctl-oci; dockerd --add-runtime tfctl=/usr/local/bin/tfctl-oci"), ("Then", "docker run --runtime tfctl --rm busybox echo hi")], ..Extra::default() },
        "tfctl-oci-create" => Extra { examples: &[("Create a container from a bundle; it waits for start", "tfctl oci create --bundle /srv/bundle --pid-file /run/c1.pid c1")], ..Extra::default() },
        "tfctl-oci-run" => Extra { examples: &[("Create, start and wait for a container", "tfctl oci run --bundle /srv/bundle c1")], ..Extra::default() },
        "tfctl-oci-start" => Extra { examples: &[("Start a created container", "tfctl oci start c1")], ..Extra::default() },
        "tfctl-oci-state" => Extra { examples: &[("The runtime spec's state document", "tfctl oci state c1")], ..Extra::default() },
        "tfctl-oci-delete" => Extra { examples: &[("Remove a container, stopping it first", "tfctl oci delete --force c1")], ..Extra::default() },
        "tfctl-oci-exec" => Extra { examples: &[("Run a command in a container", "tfctl oci exec c1 ps")], ..Extra::default() },
        "tfctl-oci-features" => Extra { examples: &[("What this runtime supports", "tfctl oci features")], ..Extra::default() },
        "tfctl-oci-kill" => Extra { examples: &[("Send SIGTERM to a container's process", "tfctl oci kill c1 TERM")], ..Extra::default() },
        "tfctl-oci-list" => Extra { examples: &[("List containers", "tfctl oci list")], ..Extra::default() },
        "tfctl-oci-pause" => Extra { examples: &[("Freeze a container's processes", "tfctl oci pause c1")], ..Extra::default() },
        "tfctl-oci-resume" => Extra { examples: &[("Thaw them", "tfctl oci resume c1")], ..Extra::default() },
        "tfctl-oci-ps" => Extra { examples: &[("A container's processes", "tfctl oci ps c1")], ..Extra::default() },
        _ => Extra::default(),
    }
}

/// Roff for the sections of `extra`, every page's EXIT STATUS included.
pub fn render(extra: &Extra) -> String {
    let mut out = String::new();
    out.push_str(".SH \"EXIT STATUS\"\n");
    let mut codes: Vec<(u8, &str)> = vec![(0, "success"), (1, "an operation failed"), (2, "invalid usage or app file")];
    codes.extend(extra.exit.iter().copied());
    for (code, what) in codes {
        out.push_str(&format!(".TP\n{}\n{}\n", if code == 128 { "128+N".to_string() } else { code.to_string() }, text(what)));
    }
    if let Some(json) = extra.json {
        out.push_str(".SH JSON\nWith \\fB\\-\\-format json\\fR, one document:\n.PP\n.nf\n");
        for l in json.lines() {
            out.push_str(&text(l));
            out.push('\n');
        }
        out.push_str(".fi\n");
    }
    if !extra.examples.is_empty() {
        out.push_str(".SH EXAMPLES\n");
        for (what, cmd) in extra.examples {
            out.push_str(&format!(".PP\n{}:\n.PP\n.RS 4\n.nf\n{}\n.fi\n.RE\n", text(what), text(cmd)));
        }
    }
    out
}

/// Description paragraphs, as roff.
pub fn paragraphs(extra: &Extra) -> String {
    extra.description.iter().map(|p| format!(".PP\n{}\n", text(p))).collect()
}

/// Text escaped for roff: backslashes, minus signs, and a leading control character.
fn text(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with(['.', '\'']) {
        format!("\\&{s}")
    } else {
        s
    }
}
