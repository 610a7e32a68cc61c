use super::*;

fn ctx() -> TemplateContext {
    let mut c = TemplateContext::default();
    c.ips.insert("db".into(), Ipv4Addr::new(10, 89, 3, 2));
    c.names.insert("db".into(), "db.shop".into());
    c.secrets
        .insert("pw".into(), SecretValue::new(b"s3cr3t-value".to_vec()));
    c
}

#[test]
fn templates_render_ips_names_and_secrets() {
    let r = render("host={{ ip.db }} name={{name.db}}\n", &ctx()).unwrap();
    assert_eq!(&r.bytes[..], b"host=10.89.3.2 name=db.shop\n");
    assert!(!r.uses_secret);
    let r = render("password: {{  secret.pw  }}", &ctx()).unwrap();
    assert_eq!(&r.bytes[..], b"password: s3cr3t-value");
    assert!(r.uses_secret);
    assert_eq!(
        &render("no braces { } here", &ctx()).unwrap().bytes[..],
        b"no braces { } here"
    );
}

#[test]
fn template_errors_name_the_reference_never_a_value() {
    let e = render("{{ secret.nope }}", &ctx()).err().unwrap();
    assert!(e.contains("secret.nope") && e.contains("`nope`"), "{e}");
    assert!(render("{{ ip.db", &ctx())
        .err()
        .unwrap()
        .contains("never closed"));
    assert!(render("{{ env.HOME }}", &ctx())
        .err()
        .unwrap()
        .contains("not ip.NAME"));
    assert!(render("{{ db }}", &ctx())
        .err()
        .unwrap()
        .contains("not ip.NAME"));
}

#[test]
fn render_files_reads_sources_and_marks_secret_templates() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("nginx.conf");
    std::fs::write(&src, "upstream {{ ip.db }};").unwrap();
    let files = vec![
        PreBootFile {
            path: "/etc/a".into(),
            content: FileContent::Inline("{{ ip.db }}".into()),
            template: false,
            mode: 0o644,
            owner: None,
        },
        PreBootFile {
            path: "/etc/b".into(),
            content: FileContent::From(src),
            template: true,
            mode: 0o600,
            owner: Some(Owner { uid: 7, gid: 8 }),
        },
        PreBootFile {
            path: "/etc/c".into(),
            content: FileContent::Inline("{{secret.pw}}".into()),
            template: true,
            mode: 0o400,
            owner: None,
        },
    ];
    let r = render_files(&files, &ctx()).unwrap();
    assert_eq!(
        &r[0].content[..],
        b"{{ ip.db }}",
        "not a template: verbatim"
    );
    assert_eq!(&r[1].content[..], b"upstream 10.89.3.2;");
    assert_eq!(r[1].owner, Owner { uid: 7, gid: 8 });
    assert_eq!(r[0].owner, Owner { uid: 0, gid: 0 });
    assert_eq!(
        (r[0].uses_secret, r[1].uses_secret, r[2].uses_secret),
        (false, false, true)
    );
    assert!(!format!("{:?}", r[2]).contains("s3cr3t"));
}
