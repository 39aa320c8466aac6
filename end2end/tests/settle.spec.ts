import { expect, test } from "@playwright/test";
import { open, session } from "./support";

// Symptom first: its own proposal waits; then the root cause's alert joins, the analysis runs
// again, the first proposal ends SUPERSEDED (shown live, linked to its replacement), and the
// fix is signed where the incident is read — on its page.
test("a symptom's proposal is superseded live and the root cause's fix is signed on the incident page", async ({
  browser,
}) => {
  const admin = await session(browser, "admin");
  // Their own namespace label: an incident apart from anything else on the demo server.
  const labels = { namespace: "e2e-settle" };
  const fire = async (name: string, service: string, description: string) => {
    const fired = await admin.request.post("/api/v1/alerts/webhook", {
      data: { name, service, severity: "critical", description, labels },
    });
    expect(fired.status()).toBe(202);
    return (await fired.json()).incidents[0] as string;
  };
  const incident = await fire("ProductApiOOMKilled", "product-api", "container OOMKilled 3 times");
  const path = `/incidents/${incident}`;

  const alice = await session(browser, "alice");
  await open(alice, path);
  const act = alice.getByTestId("incident-act");
  const card = (id: string | null) => act.locator(`[data-testid="approval-card"][data-approval="${id}"]`);
  const first = act.getByTestId("approval-card").filter({ hasText: "scale_deployment product-api" });
  await expect(first).toHaveAttribute("data-status", "PENDING");
  const firstId = await first.getAttribute("data-approval");

  expect(await fire("RedisEvictingKeys", "redis-cache", "evicted_keys rising, maxmemory reached")).toBe(incident);

  // No reload: the symptom's proposal ends SUPERSEDED, pointing at the root cause's fix,
  // which is now the one proposal waiting.
  await expect(card(firstId)).toHaveAttribute("data-status", "SUPERSEDED");
  await expect(card(firstId).getByTestId("superseded-by")).toContainText("restart_deployment redis-cache");
  const pending = act.locator('[data-testid="approval-card"][data-status="PENDING"]');
  await expect(pending).toHaveCount(1);
  await expect(pending).toContainText("restart_deployment redis-cache");
  const fix = card(await pending.getAttribute("data-approval"));
  const history = alice.getByTestId("incident-approvals");
  const replaced = history.getByTestId("incident-approval").filter({ hasText: "scale_deployment product-api" });
  await expect(replaced).toContainText("SUPERSEDED");
  await expect(replaced.getByTestId("replaced-by")).toBeVisible();
  await expect(alice.getByTestId("root-causes")).toContainText("redis-cache");
  await expect(alice.getByTestId("analysis-trigger")).toContainText("the root cause changed from product-api to redis-cache");
  await expect(alice.getByTestId("workloads")).toContainText("redis-cache");

  // HIGH in `prod`: two signatures, each from the incident page.
  await fix.getByTestId("sign-reason").fill("the cache is the root cause");
  await fix.getByTestId("approve").click();
  await expect(fix.getByTestId("quorum")).toContainText("1 of 2 signatures");

  const bob = await session(browser, "bob");
  await open(bob, path);
  const bobs = bob
    .getByTestId("incident-act")
    .locator(`[data-testid="approval-card"][data-approval="${await fix.getAttribute("data-approval")}"]`);
  await expect(bobs.getByTestId("signatures")).toContainText("alice");
  await bobs.getByTestId("approve").click();
  await expect(bobs).toHaveAttribute("data-status", "EXECUTED");
  await expect(bobs.getByTestId("execution")).toContainText("deployments/redis-cache restarted");
  // Alice's page hears of it live.
  await expect(fix).toHaveAttribute("data-status", "EXECUTED");
  await alice.screenshot({ path: "test-results/incident-act.png", fullPage: true });
});
