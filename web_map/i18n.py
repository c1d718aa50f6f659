"""Words of the pages in Vietnamese (the default) and English (`?lang=en`).

One table keyed by a short name; `Texts(lang)` looks words up and formats numbers,
money and dates the way readers of that language expect (1.250.000 đ / 1,250,000 VND).
The `JS_KEYS` subset is handed to the browser for popups and legends.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"

WORDS: dict[str, tuple[str, str]] = {
    # chrome
    "app_name": ("Đường lên cột mốc", "Roads to the border markers"),
    "nav_donor": ("Bản đồ nhà tài trợ", "Donor map"),
    "nav_post": ("Đồn biên phòng", "Border post"),
    "nav_planner": ("Tổng quan kế hoạch", "Planner overview"),
    "nav_villages": ("Bản kết nghĩa", "Twinned villages"),
    "nav_charts": ("Biểu đồ", "Charts"),
    "switch_lang": ("English", "Tiếng Việt"),
    "switch_lang_title": ("Xem bằng tiếng Anh", "Xem bằng tiếng Việt (Vietnamese)"),
    "menu": ("Bộ lọc và tổng hợp", "Filters and summary"),
    "basemap": ("Bản đồ nền", "Basemap"),
    "basemap_offline": ("Không tải được bản đồ nền; các lớp dữ liệu vẫn hiển thị trên đường biên giới.",
                        "The basemap cannot be reached; the data layers are still shown over the borders."),
    "outlines": ("Ranh giới quốc gia (OSM)", "Country outlines (OSM)"),
    "border_line": ("Đường biên giới", "Border line"),
    "generated_note": ("Vị trí mốc, đường và số liệu là dữ liệu mẫu sinh tự động, trừ các tên thật ghi rõ.",
                       "Marker positions, roads and figures are generated demo data, except the real "
                       "names marked as such."),
    "tiles_mode": ("Dữ liệu lớn: bản đồ dùng ô vector (vector tiles).",
                   "Large data: the map uses vector tiles."),
    # layers
    "layer_roads": ("Đường nhánh", "Branch roads"),
    "layer_markers": ("Cột mốc", "Boundary markers"),
    "layer_posts": ("Đồn biên phòng", "Border-guard posts"),
    "layer_inaugurations": ("Lễ khánh thành", "Inaugurations"),
    "layer_villages": ("Bản / khóm", "Villages"),
    "layer_pairs": ("Cặp bản kết nghĩa", "Twinned village pairs"),
    # statuses
    "status_proposed": ("Đề xuất", "Proposed"),
    "status_surveyed": ("Đã khảo sát", "Surveyed"),
    "status_funded": ("Đủ kinh phí", "Funded"),
    "status_under_construction": ("Đang thi công", "Under construction"),
    "status_completed": ("Hoàn thành", "Completed"),
    "status_inaugurated": ("Đã khánh thành", "Inaugurated"),
    "status_suspended": ("Tạm dừng", "Suspended"),
    "status_cancelled": ("Hủy bỏ", "Cancelled"),
    # marker access
    "access_none": ("Chưa có đường", "No track"),
    "access_footpath": ("Đường mòn", "Footpath"),
    "access_earth": ("Đường đất", "Earth road"),
    "access_concrete": ("Đường bê tông", "Concrete road"),
    "marker_kind_main": ("Mốc chính", "Main marker"),
    "marker_kind_sub": ("Mốc phụ", "Sub-marker"),
    "marker_kind_paired": ("Mốc đôi", "Paired marker"),
    # money
    "kind_pledge": ("Đăng ký ủng hộ", "Pledged"),
    "kind_commitment": ("Cam kết", "Committed"),
    "kind_disbursement": ("Đã giải ngân", "Disbursed"),
    "kind_expenditure": ("Đã chi", "Spent"),
    "pledged": ("Đăng ký ủng hộ", "Pledged"),
    "committed": ("Cam kết", "Committed"),
    "disbursed": ("Giải ngân", "Disbursed"),
    "spent": ("Đã chi", "Spent"),
    "currency": ("đ", "VND"),
    "billion": ("tỷ", "bn"),
    "million": ("triệu", "m"),
    # popups and panels
    "road": ("Đường nhánh", "Branch road"),
    "code": ("Mã", "Code"),
    "status": ("Trạng thái", "Status"),
    "progress": ("Tiến độ", "Progress"),
    "markers_served": ("Lên mốc", "Markers served"),
    "marker": ("Cột mốc", "Marker"),
    "post": ("Đồn biên phòng", "Border post"),
    "province": ("Tỉnh", "Province"),
    "district": ("Huyện", "District"),
    "commune": ("Xã", "Commune"),
    "length": ("Chiều dài", "Length"),
    "estimated_cost": ("Dự toán", "Estimated cost"),
    "donors": ("Nhà tài trợ", "Donors"),
    "donor": ("Nhà tài trợ", "Donor"),
    "no_donors": ("Chưa có nhà tài trợ", "No donors yet"),
    "member_of": ("thuộc", "member of"),
    "group": ("nhóm", "group"),
    "inaugurated_on": ("Khánh thành ngày", "Inaugurated on"),
    "inauguration": ("Lễ khánh thành", "Inauguration"),
    "photo": ("Ảnh", "Photo"),
    "history": ("Lịch sử", "History"),
    "access": ("Hiện trạng đường", "Access today"),
    "kind": ("Loại", "Kind"),
    "roads": ("Đường nhánh", "Roads"),
    "roads_count": ("Số đường", "Roads"),
    "markers": ("Cột mốc", "Markers"),
    "km": ("km", "km"),
    "total": ("Tổng", "Total"),
    "summary": ("Tổng hợp", "Summary"),
    "legend": ("Chú giải", "Legend"),
    "map_label": ("Bản đồ", "Map"),
    "place": ("Địa điểm", "Place"),
    "date": ("Ngày", "Date"),
    "roads_inaugurated": ("Đường được khánh thành", "Roads inaugurated"),
    "donors_credited": ("Nhà tài trợ được ghi nhận", "Donors credited"),
    "officials": ("Thành phần", "Officials"),
    "loading": ("Đang tải…", "Loading…"),
    "load_failed": ("Không tải được dữ liệu", "Could not load the data"),
    # filters
    "filters": ("Bộ lọc", "Filters"),
    "all": ("Tất cả", "All"),
    "apply": ("Lọc", "Apply"),
    "clear": ("Bỏ lọc", "Clear"),
    "campaign": ("Đợt vận động / phong trào", "Campaign"),
    "statuses": ("Trạng thái đường", "Road status"),
    "filtered_by": ("Đang lọc", "Filtered by"),
    # donor map
    "donor_title": ("Bản đồ các đường nhánh được tài trợ", "Map of the funded branch roads"),
    "donor_intro": ("Xem tiền ủng hộ đã đến đâu: mỗi đường nhánh, trạng thái, nhà tài trợ và số tiền.",
                    "See where the money went: each branch road, its status, donors and amounts."),
    "roads_by_status": ("Đường nhánh theo trạng thái", "Roads by status"),
    "money": ("Kinh phí", "Money"),
    # post page
    "post_title": ("Trang đồn biên phòng", "Border post page"),
    "choose_post": ("Chọn đồn biên phòng", "Choose the border post"),
    "show": ("Xem", "Show"),
    "no_post_chosen": ("Chọn một đồn để xem cột mốc, đường nhánh và cập nhật trạng thái.",
                       "Choose a post to see its markers and roads and update their status."),
    "sign_in_hint": ("Đăng nhập bằng tài khoản của đồn để cập nhật trạng thái đường nhánh.",
                     "Sign in with your post's account to update the status of its roads."),
    "sign_in": ("Đăng nhập", "Sign in"),
    "username": ("Tên đăng nhập", "Username"),
    "password": ("Mật khẩu", "Password"),
    "signed_in_as": ("Đã đăng nhập:", "Signed in as"),
    "sign_out": ("Đăng xuất", "Sign out"),
    "go_to_your_post": ("Đến trang đồn của bạn", "Go to your post's page"),
    "sign_in_first": ("Hãy đăng nhập trước khi gửi cập nhật.", "Sign in before sending an update."),
    "session_expired": ("Phiên đăng nhập đã hết hạn. Hãy đăng nhập lại.", "Your session has ended. Sign in again."),
    "wrong_post": ("Tài khoản này thuộc đồn khác: chỉ xem được đường của đồn này.",
                   "This account belongs to another post: you can only view this post's roads."),
    "signing_in": ("Đang đăng nhập…", "Signing in…"),
    "planner_sign_in_hint": ("Trang này dành cho cán bộ lập kế hoạch. Hãy đăng nhập bằng tài khoản "
                             "lập kế hoạch để xem.", "This page is for planners. Sign in with a planner's account."),
    "planner_only": ("Tài khoản của bạn không có quyền lập kế hoạch. Đăng nhập bằng tài khoản lập kế hoạch.",
                     "Your account is not a planner's. Sign in with a planner's account."),
    "wrong_credentials": ("Sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đã bị khóa.",
                          "Wrong username or password, or the account is disabled."),
    "too_many_attempts": ("Đăng nhập sai quá nhiều lần. Hãy thử lại sau ít phút.",
                          "Too many failed attempts. Try again in a few minutes."),
    "post_roads": ("Đường nhánh của đồn", "Roads of this post"),
    "post_markers": ("Cột mốc do đồn phụ trách", "Markers this post is responsible for"),
    "update_status": ("Cập nhật trạng thái", "Update status"),
    "update": ("Cập nhật", "Update"),
    "next_status": ("Chuyển sang", "Move to"),
    "note": ("Ghi chú", "Note"),
    "note_hint": ("Việc đã làm, lý do tạm dừng/hủy…", "What was done, why suspended/cancelled…"),
    "completed_on": ("Ngày hoàn thành", "Completion date"),
    "gpx_track": ("Vết GPS (GPX)", "GPS track (GPX)"),
    "gpx_hint": ("Cần khi báo hoàn thành: tuyến đường thực tế.",
                 "Needed to report completion: the as-built line."),
    "submit": ("Gửi cập nhật", "Send update"),
    "sending": ("Đang gửi…", "Sending…"),
    "uploading": ("Đang tải tệp lên…", "Uploading files…"),
    "saved": ("Đã lưu: đường {code} chuyển sang “{status}”.", "Saved: road {code} is now “{status}”."),
    "error": ("Không lưu được", "Not saved"),
    "network_error": ("Mất kết nối. Bấm gửi lại — yêu cầu sẽ không bị ghi hai lần.",
                      "No connection. Press send again — the request will not be recorded twice."),
    "stale": ("Đường này vừa được người khác cập nhật. Tải lại trang để xem trạng thái mới.",
              "Someone else has just updated this road. Reload the page to see its new status."),
    "no_next_status": ("Không còn bước tiếp theo cho đường này.", "This road has no further step."),
    "inaugurated_via": ("Khánh thành được ghi nhận qua biên bản lễ khánh thành.",
                        "Inauguration is recorded through the inauguration record."),
    "choose_road": ("Chọn đường nhánh", "Choose a road"),
    "list": ("Danh sách", "List"),
    "version": ("Phiên bản", "Version"),
    "no_roads": ("Đồn chưa có đường nhánh.", "This post has no roads yet."),
    # planner
    "planner_title": ("Tổng quan cho cơ quan lập kế hoạch", "Planner overview"),
    "per_province": ("Theo tỉnh", "Per province"),
    "border_wide": ("Toàn tuyến (chưa chia tỉnh)", "Border-wide (no province)"),
    "markers_reached": ("Mốc đã có đường", "Markers reached"),
    "km_built": ("Km đã xây", "Km built"),
    "ranking": ("Xếp hạng mốc cần làm đường", "Ranking of markers to fund"),
    "ranking_intro": ("Chọn các mốc nên làm đường tiếp theo trong phạm vi ngân sách.",
                      "Choose the next markers to fund within a budget."),
    "open_planner": ("Mở trang lập kế hoạch", "Open the planner"),
    "markers_by_access": ("Cột mốc theo hiện trạng đường", "Markers by access"),
    # villages
    "villages_title": ("Các cặp bản kết nghĩa hai bên biên giới", "Twinned village pairs across the border"),
    "pair": ("Cặp kết nghĩa", "Twinned pair"),
    "twinned_on": ("Kết nghĩa ngày", "Twinned on"),
    "meetings": ("Số lần giao ban", "Meetings"),
    "last_meeting": ("Giao ban gần nhất", "Last meeting"),
    "never_met": ("Chưa giao ban", "No meeting yet"),
    "overdue": ("Quá hạn giao ban", "Meeting overdue"),
    "on_time": ("Giao ban đúng hạn", "Meetings on time"),
    "overdue_explain": ("Chưa có giao ban cho quý vừa qua.", "No meeting for the last completed quarter."),
    "vn_side": ("Phía Việt Nam", "Viet Nam side"),
    "other_side": ("Phía nước bạn", "Neighbour side"),
    "pairs_overdue": ("cặp quá hạn", "pairs overdue"),
    "more_on_map": ("và {n} cặp khác: xem trên bản đồ.", "and {n} more pairs: see the map."),
    # charts
    "charts_title": ("Biểu đồ kinh phí và tiến độ", "Money and progress charts"),
    "money_over_time": ("Kinh phí theo năm và loại", "Money by year and kind"),
    "money_by_donor": ("Kinh phí theo nhà tài trợ", "Money by donor"),
    "roads_by_province": ("Đường nhánh theo trạng thái ở từng tỉnh", "Roads by status per province"),
    "year": ("Năm", "Year"),
    "show_table": ("Xem bảng số liệu", "Show the numbers"),
    "all_donors": ("Tất cả nhà tài trợ", "All donors"),
    "top_donors": ("{n} nhà tài trợ lớn nhất (theo đăng ký ủng hộ)", "Top {n} donors (by pledges)"),
    "no_data": ("Chưa có số liệu", "No data yet"),
}

# Words the browser needs (popups, legends, the post form).
JS_PREFIXES = ("status_", "access_", "marker_kind_", "kind_")
JS_KEYS = (
    "road", "code", "status", "progress", "markers_served", "marker", "post", "province",
    "district", "commune", "length", "estimated_cost", "donors", "no_donors", "member_of",
    "inaugurated_on", "inauguration", "photo", "access", "kind", "roads", "markers", "pledged",
    "committed", "disbursed", "spent", "currency", "place", "date", "roads_inaugurated",
    "donors_credited", "pair", "twinned_on", "meetings", "last_meeting", "never_met", "overdue",
    "on_time", "vn_side", "other_side", "basemap_offline", "loading", "load_failed", "update_status",
    "sending", "uploading", "saved", "error", "network_error", "stale", "no_next_status",
    "inaugurated_via", "history", "group", "officials", "km", "billion", "million", "total",
    "legend", "map_label", "sign_in_first", "session_expired", "wrong_post", "signing_in",
    "wrong_credentials", "too_many_attempts",
)


def normalise_lang(value: str | None) -> str:
    return value if value in LANGS else DEFAULT_LANG


class Texts:
    """The words and number formats of one language."""

    def __init__(self, lang: str):
        self.lang = normalise_lang(lang)
        self._i = LANGS.index(self.lang)

    def __call__(self, key: str, **fmt) -> str:
        text = WORDS[key][self._i]
        return text.format(**fmt) if fmt else text

    @property
    def other_lang(self) -> str:
        return "en" if self.lang == "vi" else "vi"

    def js_words(self) -> dict[str, str]:
        keys = [k for k in WORDS if k.startswith(JS_PREFIXES)] + list(JS_KEYS)
        return {k: self(k) for k in keys}

    # numbers ------------------------------------------------------------------------
    def num(self, value: int | float | Decimal | None, decimals: int = 0) -> str:
        if value is None:
            return "–"
        s = f"{value:,.{decimals}f}"
        if self.lang == "vi":  # 1.234.567,5
            s = s.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
        return s

    def money(self, value: int | Decimal | None) -> str:
        return f"{self.num(int(value or 0))} {self('currency')}"

    def money_short(self, value: int | Decimal | None) -> str:
        """1.2 bn / 1,2 tỷ; 350 m / 350 triệu: for chart axes and tight panels."""
        v = int(value or 0)
        if abs(v) >= 1_000_000_000:
            return f"{self.num(v / 1e9, 1 if v % 1_000_000_000 else 0)} {self('billion')}"
        if abs(v) >= 1_000_000:
            return f"{self.num(v / 1e6, 0)} {self('million')}"
        return self.num(v)

    def km(self, metres: int | float | Decimal | None) -> str:
        return f"{self.num(float(metres or 0) / 1000, 1)} km"

    def date(self, value: date | str | None) -> str:
        if value is None:
            return "–"
        if isinstance(value, str):
            value = date.fromisoformat(value[:10])
        if self.lang == "vi":
            return value.strftime("%d/%m/%Y")
        return value.strftime("%d %b %Y")
