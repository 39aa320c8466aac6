import { expect, test } from "@playwright/test";

const password = process.env.AWOOOI_DEMO_PASSWORD ?? "";

test("the incident page streams the Brain's thinking and highlights the root cause", async ({ page }) => {
  await page.goto("/login");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);

  // The seed's 3 AM scenario, in one request: the database runs out of connections, the
  // frontend throws 5xx. One incident, whose root cause is the database.
  const response = await page.request.post("/api/v1/alerts/webhook", {
    data: [
      { name: "ConnectionsExhausted", service: "postgres-db", severity: "critical" },
      {
        name: "HighErrorRate",
        service: "frontend",
        severity: "critical",
        annotations: { summary: `frontend 5xx rate > 15% (${Date.now()})` },
      },
    ],
  });
  expect(response.status()).toBe(202);
  const incidents = (await response.json()).incidents;
  expect(incidents).toHaveLength(1);
  const id = incidents[0];

  await page.goto(`/incidents/${id}`);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const terminal = page.getByTestId("thinking-terminal");
  await expect(terminal.locator(".kind-conclusion").first()).toContainText("postgres-db");
  await expect(page.getByTestId("root-causes")).toHaveText("postgres-db");
  const graph = page.getByTestId("topology-graph");
  await expect(graph.locator('[data-service="postgres-db"]')).toHaveClass(/root-cause/);
  await expect(graph.locator('[data-service="postgres-db"]')).toHaveClass(/focus/);
  await expect(graph.locator('[data-service="frontend"]')).toHaveClass(/blast/);
  await expect(graph.locator('[data-service="ingress"]')).toHaveClass(/blast/);
  // The alerts, by service along the path to the root cause; and why the frontend's joined.
  const paths = page.getByTestId("alert-path");
  await expect(paths).toHaveText(["postgres-db (root cause)", "frontend → auth-service → postgres-db"]);
  await expect(terminal.locator(".kind-correlation")).toContainText(
    "frontend depends on postgres-db, which is this incident's root cause",
  );

  // Live: a new analysis streams into the open page without a reload.
  const lines = terminal.locator(".terminal-line:not(.kind-correlation)");
  const before = await lines.count();
  const again = await page.request.post("/graphql", {
    data: { query: `mutation { analyzeIncident(id: "${id}") { id } }` },
  });
  expect(again.status()).toBe(200);
  await expect(lines).toHaveCount(before * 2);
  await expect(terminal.locator(".terminal-line").last()).toHaveClass(/kind-conclusion/);
  await page.screenshot({ path: "test-results/incident-analysis.png", fullPage: true });
});

test("the topology page shows health and a clicked service's blast radius", async ({ page }) => {
  await page.goto("/login");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.getByLabel("Username").fill("erin");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  await page.getByRole("link", { name: "Topology" }).click();
  await expect(page).toHaveURL(/\/topology$/);
  await expect(page.getByTestId("health-summary")).toContainText("8 services");
  await page.locator('[data-testid="topology-graph"] [data-service="postgres-db"]').click();
  await expect(page.getByTestId("selection-blast")).toHaveText(
    "auth-service, order-api, product-api, frontend, ingress",
  );
  await expect(page.locator('[data-service="ingress"]')).toHaveClass(/blast/);
});

test("the dashboard fires the 3 AM scenario and its incident's one pending fix is the database's", async ({ page }) => {
  await page.goto("/login");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(process.env.AWOOOI_DEMO_PASSWORD ?? "");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.getByTestId("fire-scenario").click();
  const fired = page.getByTestId("scenario-incidents").getByRole("link");
  // One incident: the frontend's alert joined the database's.
  await expect(fired).toHaveCount(1);
  await fired.first().click();
  await expect(page.getByTestId("root-causes")).toContainText("postgres-db");
  await expect(page.getByTestId("incident-approvals")).toBeVisible();
  // Ready to sign where it is read: one proposal waits, aimed at the root cause, dry-run passed.
  const pending = page
    .getByTestId("incident-act")
    .locator('[data-testid="approval-card"][data-status="PENDING"]');
  await expect(pending).toHaveCount(1);
  await expect(pending).toContainText("restart_deployment postgres-db");
  await expect(pending.getByTestId("dry-run")).not.toContainText("FAIL");
});
