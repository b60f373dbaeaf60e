// The header's schedule: the cron, its time zone and when the next scheduled run starts.
import { api } from "./api.js";
import { h, replace } from "./dom.js";

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

export async function showSchedule(element) {
  const listing = await api.schedule(3);
  if (!listing.schedule) {
    element.hidden = true;
    return;
  }
  const next = listing.next[0];
  const title = [
    `${listing.schedule} (${listing.timezone}${listing.catchup ? ", catch-up" : ""})`,
    ...listing.next.map((entry) => `${entry.logical_date}: runs at ${when(entry.runs_at)}`),
  ].join("\n");
  element.hidden = false;
  element.title = title;
  element.dataset.nextRun = next ? next.runs_at : "";
  element.dataset.nextDate = next ? next.logical_date : "";
  replace(
    element,
    h("span", { class: "mono" }, listing.schedule),
    next ? h("span", { class: "muted" }, ` · next ${when(next.runs_at)} (${next.logical_date})`) : h("span", { class: "muted" }, " · no next run"),
  );
}
