import { expect, test } from "@playwright/test";
import { open, session } from "./support";

test("alice and bob sign a HIGH card in their own sessions; a third sees it executed live", async ({
  browser,
}) => {
  const admin = await session(browser, "admin");
  const fired = await admin.request.post("/api/v1/alerts/webhook", {
    data: { name: "AuthLatency", service: "e2e-approvals", severity: "warning" },
  });
  expect(fired.status()).toBe(202);
  const incident = (await fired.json()).incidents[0];
  // Restarting a deployment is MEDIUM; auth-service runs in `prod`, which raises it to HIGH.
  const proposed = await admin.request.post("/graphql", {
    data: {
      query: `mutation($i: ID!) { proposeAction(incidentId: $i, action:
        {kind: "restart_deployment", target: "auth-service", rationale: "e2e: sessions pile up"})
        { id effectiveRisk } }`,
      variables: { i: incident },
    },
  });
  const answer = await proposed.json();
  expect(answer.errors).toBeUndefined();
  expect(answer.data.proposeAction.effectiveRisk).toBe("HIGH");
  const path = `/approvals/${answer.data.proposeAction.id}`;

  // The third session watches; carol is a CTO, not a signer of HIGH actions.
  const watcher = await session(browser, "carol");
  await open(watcher, path);
  const watched = watcher.getByTestId("approval-card");
  await expect(watched).toHaveAttribute("data-status", "PENDING");
  await expect(watched.getByTestId("risk")).toContainText("HIGH");
  await expect(watched.getByTestId("dry-run").locator("tr")).toHaveCount(5);
  await expect(watched.getByTestId("dry-run")).not.toContainText("FAIL");

  const erin = await session(browser, "erin");
  await open(erin, path);
  await expect(erin.getByTestId("approve")).toBeDisabled();
  await expect(erin.getByTestId("reject")).toBeDisabled();
  await expect(erin.getByTestId("sign-blocked")).toHaveText(
    "HIGH needs a signature from ADMIN, DEVOPS or SRE; you are VIEWER",
  );

  const alice = await session(browser, "alice");
  await open(alice, path);
  await expect(alice.getByTestId("quorum")).toContainText("0 of 2 signatures");
  await alice.getByTestId("sign-reason").fill("restart is safe, replicas are healthy");
  await alice.getByTestId("approve").click();
  await expect(alice.getByTestId("quorum")).toContainText("1 of 2 signatures");
  await expect(alice.getByTestId("approve")).toBeDisabled();
  await expect(alice.getByTestId("sign-blocked")).toHaveText("you have already signed this approval");

  const bob = await session(browser, "bob");
  await open(bob, path);
  await expect(bob.getByTestId("signatures")).toContainText("alice (DEVOPS)");
  await bob.getByTestId("approve").click();

  // No reload in the watcher's session: every step arrives over approvalUpdates.
  await expect(watched).toHaveAttribute("data-status", "EXECUTED");
  await expect(watched.getByTestId("signatures")).toContainText("bob (SRE)");
  await expect(watched.getByTestId("execution")).toContainText("deployments/auth-service restarted");
  await expect(watched.getByTestId("recheck")).toContainText("unchanged");
  await expect(erin.getByTestId("approval-card")).toHaveAttribute("data-status", "EXECUTED");
  await watcher.screenshot({ path: "test-results/approval-card.png", fullPage: true });

  await open(watcher, "/trust");
  const trust = watcher.getByTestId("trust-row").filter({ hasText: "restart_deployment:auth-service" });
  await expect(trust).toContainText("9 more approval(s) to count as MEDIUM");
});

test("the audit page lists what happened and verifies the chain", async ({ browser }) => {
  const page = await session(browser, "erin");
  await open(page, "/audit");
  await expect(page.getByTestId("audit-row").first()).toBeVisible();
  await expect(page.getByTestId("audit-row").filter({ hasText: "login" }).first()).toBeVisible();
  await page.getByTestId("verify").click();
  await expect(page.getByTestId("verdict")).toHaveText(/^Chain intact: \d+ event\(s\) checked\.$/);
});
