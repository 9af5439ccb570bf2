/** Requests of `model` a gateway has fully received, from its /metrics: answered, and queued or running. */
export async function requestsReceived(baseUrl: string, model: string): Promise<{ answered: number; ongoing: number }> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const sum = (name: string): number =>
    [...text.matchAll(new RegExp(`^tandem_${name}\\{[^}]*model="${model}"[^}]*\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
  return { answered: sum('inference_requests_total'), ongoing: sum('inference_ongoing_requests') };
}
