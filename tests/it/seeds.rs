//! The two seed documents disagree. Encoding each one's port assignments as written, side
//! by side, must make `validate` report every clash with both services and both places;
//! the shipped configuration resolves each of them (see docs/seed-reconciliation.md).

use insta::assert_snapshot;

use crate::common::Platform;

/// The unified plan's services on the contested ports, as the plan writes them.
const PLAN: &str = r#"
[services.campaign]
title = "Campaign Service (plan: moved from 3006)"
category = "microservice"
image = "bizosaas/campaign:1"
ports = [3007]
health = { http = "/health" }

[services.analytics-alternative]
title = "Analytics Service (plan: alternative port)"
category = "microservice"
image = "bizosaas/analytics:1"
ports = [3010]
health = { http = "/health" }

[services.contact]
title = "Contact Service (plan)"
category = "microservice"
image = "bizosaas/contact:1"
ports = [3011]
health = { http = "/health" }

[services.analytics]
title = "Analytics Service (plan)"
category = "backend"
image = "bizosaas/analytics:1"
ports = [8002]
health = { http = "/health" }

[services.redis]
title = "Redis (plan: infrastructure range 5000-5999)"
kind = "infrastructure"
category = "cache"
image = "redis:7-alpine"
ports = [6379]
health = { cmd = ["redis-cli", "ping"] }
"#;

/// The port allocation guide's services on the same ports, as the guide writes them.
const GUIDE: &str = r#"
[services.coreldove-frontend]
title = "CorelDove Frontend (guide)"
category = "frontend"
image = "bizosaas/coreldove-frontend:1"
ports = [3007]
health = { http = "/health" }

[services.business-directory]
title = "Business Directory (guide)"
category = "frontend"
image = "bizosaas/business-directory:1"
ports = [3010]
health = { http = "/health" }

[services.super-admin]
title = "Super Admin Dashboard (guide: deprecated, still listed on 3011)"
category = "admin"
image = "bizosaas/super-admin:1"
ports = [3011]
health = { http = "/health" }

[services.wagtail-cms]
title = "Wagtail CMS (guide)"
category = "backend"
image = "bizosaas/wagtail-cms:1"
ports = [8002]
health = { http = "/health" }
"#;

/// The plan's reserved ranges: caches belong to 5000-5999 (the guide says 6000-6999).
const PLAN_RANGES: &str = r#"[platform]
name = "bizosaas"

[[ranges]]
name = "frontend"
ports = "3000-3099"
categories = ["frontend", "admin", "microservice"]

[[ranges]]
name = "backend"
ports = "8000-8039"
categories = ["backend"]

[[ranges]]
name = "infrastructure"
ports = "5000-5999"
categories = ["database", "cache"]
"#;

#[test]
fn validation_catches_every_clash_between_the_seed_documents() {
    let platform = Platform::new()
        .file("config/platform.toml", PLAN_RANGES)
        .remove("config/services/services.toml")
        .file("config/services/1-plan.toml", PLAN)
        .file("config/services/2-guide.toml", GUIDE)
        .file(
            "phases/1-core.toml",
            "phase = 1\nname = \"Core\"\nservices = [\"campaign\", \"analytics\", \"analytics-alternative\", \"contact\", \"coreldove-frontend\", \"business-directory\", \"super-admin\", \"wagtail-cms\"]\n",
        )
        .file("phases/2-web.toml", "phase = 2\nname = \"Two\"\n");
    let output = platform.run(&["validate"]);
    assert_eq!(output.code, 2);
    for (port, plan, guide) in [
        (3007, "campaign", "coreldove-frontend"),
        (3010, "analytics-alternative", "business-directory"),
        (3011, "contact", "super-admin"),
        (8002, "analytics", "wagtail-cms"),
    ] {
        let message = format!("host port {port} is claimed by both `{plan}` and `{guide}`");
        assert!(
            output.stderr.contains(&message),
            "missing: {message}\n{}",
            output.stderr
        );
    }
    // Both places: the plan's file and the guide's file.
    assert_eq!(
        output.stderr.matches("config/services/1-plan.toml").count(),
        5,
        "{}",
        output.stderr
    );
    // The cache range: Redis on 6379 is outside the plan's 5000-5999 without an exemption.
    assert!(
        output
            .stderr
            .contains("port 6379 of `redis` is outside the reserved range of category `cache`")
    );
    assert_snapshot!(output.snapshot());
}
